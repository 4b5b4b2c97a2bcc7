"""Drill 2: the daemon SIGKILLed in the middle of a stream of sends and sensor ticks.

URLs are sent one by one while the sensor ticks; the `dagster-daemon` process is killed with
SIGKILL twice and started again each time: once while a run worker is busy, once while a
sensor tick is turning events into runs, before it saved its cursor. Where each kill landed is
proved from the tick store, read while the daemon is dead: the second kill must leave the inbox
sensor's tick STARTED (evaluating, or creating its runs) with events past the cursor Dagster had
stored. For that kill the last URLs go in one `igs send` once the sensor has caught up, and the
drill waits for the tick that began after it (a kill that still lands between ticks is tried
again with a spare URL, at most three times). Only the daemon
process dies, as when it crashes or the OOM killer picks it: its code server and the run
workers it launched keep going (and end on their own). Afterwards every video must have been
materialized exactly once: no request lost with the unsaved sensor cursor, no second run for a
re-read event (run keys), no asset materialized twice.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from drills.common import (
    SAMPLE_MP4,
    DrillResult,
    all_finished,
    check_outcome,
    dry_keys,
    kill_process_group,
    opened,
    runs_by_key,
    tally,
    wait_until,
)
from igs_dagster.core.inbox import EventQueue

STREAM = 10
KILL_AFTER = (3, 7)  # kill the daemon once this many URLs have been sent (see below)
SEND_GAP_S = 2.0
# the URLs after KILL_AFTER[1] go in one `igs send` once the sensor has caught up: the next tick
# has several events to turn into runs, and kill 2 waits for that tick. A kill that lands
# between ticks is tried again with one spare URL, at most MID_TICK_TRIES - 1 times.
MID_TICK_TRIES = 3
SENSOR = "igs_events"


class InboxSensor:
    """The inbox sensor's ticks and stored cursor, read straight from the instance (one query
    each, so the drill can poll every few milliseconds)."""

    def __init__(self, instance: dg.DagsterInstance, queue: EventQueue) -> None:
        self.instance, self.queue = instance, queue
        self._ids: tuple[str, str] | None = None

    def _origin(self) -> tuple[str, str] | None:
        if self._ids is None:
            for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
                if state.name == SENSOR:
                    self._ids = (state.instigator_origin_id, state.selector_id)
        return self._ids

    def ticks(self, limit: int = 1) -> list:
        ids = self._origin()
        return list(self.instance.get_ticks(*ids, limit=limit)) if ids else []

    def stored_cursor(self) -> int:
        ids = self._origin()
        state = self.instance.get_instigator_state(*ids) if ids else None
        cursor = getattr(state.instigator_data, "cursor", None) if state else None
        return int(json.loads(cursor).get("inbox") or 0) if cursor else 0  # defs/events.py

    def busy_tick(self, tried: set[int], since: float = 0.0):
        """The newest tick if it began after `since` (so it reads what was sent before) and is
        running (STARTED) while events wait past the stored cursor: a tick turning events into
        runs whose cursor is not saved yet."""
        ticks = self.ticks()
        tick = ticks[0] if ticks else None
        if tick is None or tick.status != TickStatus.STARTED or tick.tick_id in tried or tick.timestamp < since:
            return None
        return tick if self.queue.last_id() > self.stored_cursor() else None

    def where_it_landed(self, tick_id: int) -> dict:
        """Read while the daemon is dead (nothing moves): the tick's status and phase, its reserved
        and created runs, and the stored cursor against the events waiting in the queue."""
        tick = next((t for t in self.ticks(limit=20) if t.tick_id == tick_id), None)
        if tick is None:
            return {"tick": tick_id, "status": "missing"}
        reserved = list(tick.tick_data.reserved_run_ids or [])
        return {
            "tick": tick_id,
            "status": tick.status.value,
            "phase": "creating runs" if reserved else "evaluating",
            "reserved_runs": len(reserved),
            "runs_created": sum(1 for r in reserved if self.instance.get_run_by_id(r) is not None),
            "stored_cursor": self.stored_cursor(),
            "last_event": self.queue.last_id(),
        }


def landed_mid_tick(landing: dict) -> bool:
    """The tick was still running, with events after the cursor Dagster had stored."""
    return landing.get("status") == TickStatus.STARTED.value and landing["stored_cursor"] < landing["last_event"]


def run(ctx, result: DrillResult) -> None:
    deployment = ctx.shared()
    if deployment.daemon is None or deployment.daemon.poll() is not None:
        deployment.start_daemon()
    urls = [ctx.media.add(SAMPLE_MP4, f"daemon-kill-{i:02d}.mp4")
            for i in range(STREAM + MID_TICK_TRIES - 1)]
    stream, burst, spares = urls[:KILL_AFTER[1]], urls[KILL_AFTER[1]:STREAM], urls[STREAM:]
    key_of = dict(zip(urls, dry_keys(deployment, *urls), strict=True))
    sent: list[str] = []
    send_errors: list[str] = []

    def send(*batch: str) -> None:
        proc = deployment.igs("send", *batch, timeout=120)
        if proc.returncode != 0:
            send_errors.append(proc.stderr.strip()[:300])
        sent.extend(batch)

    def sent_keys() -> list[str]:  # a spare URL counts once it is sent
        return [key_of[url] for url in list(sent)]

    def sender() -> None:
        for url in stream:
            send(url)
            time.sleep(SEND_GAP_S)

    thread = threading.Thread(target=sender, name="drill-sender", daemon=True)
    orphans: list[int] = []
    kills: list[dict] = []
    result.details["kills"] = kills  # filled as it goes: a drill that stops early still shows them
    with opened(deployment) as instance:
        sensor = InboxSensor(instance, EventQueue(deployment.data / "queue.sqlite3"))

        def states() -> list[str]:
            return [str(r.dagster_run.status.value) for v in runs_by_key(instance, sent_keys()).values() for r in v]

        def kill(moment: str, tick_id: int | None = None) -> dict:
            old = deployment.daemon
            os.kill(old.pid, signal.SIGKILL)  # the daemon only: its children live on
            old.wait(30)
            orphans.append(old.pid)  # its process group: the code server and run workers
            record = {"moment": moment, "after_sends": len(sent), "runs": sorted(states())}
            if tick_id is not None:
                record["landed"] = sensor.where_it_landed(tick_id)
            kills.append(record)
            time.sleep(2)
            deployment.start_daemon()
            return record

        thread.start()
        # 1: while a run worker is busy (its run must still finish, once)
        wait_until(lambda: len(sent) >= KILL_AFTER[0] and "STARTED" in states(), 300,
                   "a run in flight", deployment, every=0.2)
        kill("run in flight")
        # 2: while a sensor tick turns events into runs, before it saved its cursor
        thread.join(300)
        wait_until(lambda: sensor.stored_cursor() >= sensor.queue.last_id(), 300,
                   "the sensor to catch up", deployment, every=0.2)
        tried: set[int] = set()
        for batch in [burst, *([url] for url in spares)][:MID_TICK_TRIES]:
            send(*batch)
            since = time.time()
            tick = wait_until(lambda since=since: sensor.busy_tick(tried, since), 300,
                              "a tick with events to turn into runs", deployment, every=0.005)
            tried.add(tick.tick_id)
            if landed_mid_tick(kill("sensor tick creating runs", tick.tick_id)["landed"]):
                break
        result.check(not thread.is_alive() and len(sent) >= STREAM, "every URL sent", len(sent))
        result.check(not send_errors, "igs send never failed", send_errors[:3])
        keys = sent_keys()
        wait_until(lambda: all_finished(instance, keys), 90 * STREAM, f"{STREAM} runs", deployment, every=3)
    for pgid in orphans:  # normally gone already (heartbeat timeout); never leave them behind
        kill_process_group(pgid, signal.SIGTERM)
    mid_tick = [k["landed"] for k in kills if "landed" in k and landed_mid_tick(k["landed"])]
    result.check(mid_tick, "a kill landed mid-tick: its tick still STARTED, events past the stored cursor",
                 [k.get("landed") for k in kills])
    if mid_tick:  # after the restart Dagster finished that tick (resumed it, or retired it)
        with opened(deployment) as instance:
            after = {t.tick_id: t.status.value
                     for t in InboxSensor(instance, EventQueue(deployment.data / "queue.sqlite3")).ticks(200)}
        result.details["interrupted_tick_after_restart"] = after.get(mid_tick[0]["tick"])
        result.check(after.get(mid_tick[0]["tick"]) in ("SUCCESS", "SKIPPED"),
                     "the interrupted tick was finished after the restart", after.get(mid_tick[0]["tick"]))

    found = tally(result, deployment, keys)
    runs = found["runs"]
    first_runs = {k: [r for r in v if not r.dagster_run.parent_run_id] for k, v in runs.items()}
    result.check(
        all(len(v) == 1 for v in first_runs.values()), "one sensor run per video (no re-request)",
        {k: len(v) for k, v in first_runs.items() if len(v) != 1},
    )
    result.details["retry_runs"] = sum(len(v) - len(first_runs[k]) for k, v in runs.items())
    result.check(
        all(any(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in v) for v in runs.values()),
        "every video has a successful run",
    )
    check_outcome(result, deployment, keys, found)
