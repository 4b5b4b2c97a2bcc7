"""Drill 2: the daemon SIGKILLed in the middle of a stream of sends and sensor ticks.

URLs are sent one by one while the sensor ticks; the `dagster-daemon` process is killed with
SIGKILL twice and started again each time: once while a run worker is busy, once the moment a
sensor tick is creating runs (before it can save its cursor, most likely). Only the daemon
process dies, as when it crashes or the OOM killer picks it: its code server and the run
workers it launched keep going (and end on their own). Afterwards every video must have been
materialized exactly once: no request lost with the unsaved sensor cursor, no second run for a
re-read event (run keys), no asset materialized twice.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import dagster as dg

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

STREAM = 10
KILL_AFTER = (3, 7)  # kill the daemon once this many URLs have been sent (see below)
SEND_GAP_S = 2.0


def run(ctx, result: DrillResult) -> None:
    deployment = ctx.shared()
    if deployment.daemon is None or deployment.daemon.poll() is not None:
        deployment.start_daemon()
    urls = [ctx.media.add(SAMPLE_MP4, f"daemon-kill-{i:02d}.mp4") for i in range(STREAM)]
    keys = dry_keys(deployment, *urls)
    sent: list[str] = []
    send_errors: list[str] = []

    def sender() -> None:
        for url in urls:
            proc = deployment.igs("send", url, timeout=120)
            if proc.returncode != 0:
                send_errors.append(proc.stderr.strip()[:300])
            sent.append(url)
            time.sleep(SEND_GAP_S)

    thread = threading.Thread(target=sender, name="drill-sender", daemon=True)
    orphans: list[int] = []
    kills: list[dict] = []
    with opened(deployment) as instance:
        def states() -> list[str]:
            return [str(r.dagster_run.status.value) for v in runs_by_key(instance, keys).values() for r in v]

        def kill(moment: str) -> None:
            old = deployment.daemon
            os.kill(old.pid, signal.SIGKILL)  # the daemon only: its children live on
            old.wait(30)
            orphans.append(old.pid)  # its process group: the code server and run workers
            kills.append({"moment": moment, "after_sends": len(sent), "runs": sorted(states())})
            time.sleep(2)
            deployment.start_daemon()

        thread.start()
        # 1: while a run worker is busy (its run must still finish, once)
        wait_until(lambda: len(sent) >= KILL_AFTER[0] and "STARTED" in states(), 300,
                   "a run in flight", deployment, every=0.2)
        kill("run in flight")
        # 2: the moment a sensor tick is creating runs (cursor not saved yet, most likely)
        wait_until(lambda: len(sent) >= KILL_AFTER[1], 300, "more sends")
        before = len(states())
        wait_until(lambda: len(states()) > before, 300, "a tick creating runs", deployment, every=0.05)
        kill("sensor tick creating runs")
        thread.join(300)
        result.check(not thread.is_alive() and len(sent) == STREAM, "every URL sent", len(sent))
        result.check(not send_errors, "igs send never failed", send_errors[:3])
        wait_until(lambda: all_finished(instance, keys), 90 * STREAM, f"{STREAM} runs", deployment, every=3)
    for pgid in orphans:  # normally gone already (heartbeat timeout); never leave them behind
        kill_process_group(pgid, signal.SIGTERM)
    result.details["kills"] = kills

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
