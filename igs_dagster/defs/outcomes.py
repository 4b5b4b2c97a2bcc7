"""Every finished run: loop bookkeeping, the system log and notifications (a part of the
`igs_events` sensor, defs/events.py).

This part reads the run-status changes after its cursor (one cursor per outcome, in the index of
run events) from an instance opened once per code server (`sensor_instance`), and hands each
finished run to every part that cares, in this order:

- SUCCESS: the loop's next run (queued under the turn's run id, `turns.submit_turn`), then the
  system log's stage lines, then notifications;
- FAILURE: the loop marked failed (unless run retries will re-run it), the system log, then
  notifications;
- CANCELED: the loop cancelled.

A part that fails (a full disk, a notification service down, a loop record that cannot be read)
does not keep the others from their work, and its work is not lost: the run and the failed part
are kept in the cursor (`retry`) and tried again on every tick. After RETRY_TICKS tries the part
gives up and says so: a loop whose next run could not be queued (or whose failure could not be
recorded) is marked failed with the reason (`igs loop status`), and a `loop.handoff.failed` /
`run.outcome.failed` line goes to the system log. Every part is idempotent on its own keys
(system-log dedupe `run:step:status`, the notification ledger, the turns' run ids and the loop
record's terminal states), so a part tried again, or a tick evaluated twice, does nothing twice.
The loop chain waits on this part when the run that ended could not queue its successor itself,
hence a tick on every daemon wake-up. An idle tick costs one query: the newest record id of the
event index, unchanged since the last tick, means no run finished.

Why not Dagster's `run_status_sensor` / `run_failure_sensor`, one per concern (issue 25): measured
with `igs dev` at rest (bench figure 10's method, CPU-seconds of the process tree over 90 s
after 60 s of warm-up, same machine): this combined sensor 2.26 CPU-s (daemon 1.69, code server
0.41; 2.5 % of a core), seven run-status sensors (the loop's hand-off, failure and cancel every
4 s, system log and notifications on success and failure every 30 s) plus the inbox and the
watchdog 7.1 CPU-s (daemon 3.38, code server 3.57; 7.9 %, over the 3 % goal; 3.73 CPU-s with all
seven every 30 s): each such sensor
tick costs the daemon its own tick writes and the code server a fresh instance (a run-status
sensor reads `context.instance`, re-created per tick). More in defs/events.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import dagster as dg

from igs_dagster.core import system_log
from igs_dagster.core.settings import Settings
from igs_dagster.core.text import one_line
from igs_dagster.dagster_compat import newest_event_record_id
from igs_dagster.defs.loop.resources import LoopSettings
from igs_dagster.defs.loop.sensors import cancel_loop, chain_next, fail_loop
from igs_dagster.defs.system.log_sensors import log_run_stages
from igs_dagster.defs.system.notify_sensors import notify_run

BATCH = 100
SEEN = "seen"  # the cursor's key for the event index's newest record id at the last look
RETRY = "retry"  # the cursor's key for the parts that failed: run id -> {outcome, parts, tries, error}
RETRY_TICKS = 12  # a failed part is tried on this many ticks (about a minute) before giving up
OUTCOMES = {
    "success": dg.DagsterEventType.RUN_SUCCESS,
    "failure": dg.DagsterEventType.RUN_FAILURE,
    "canceled": dg.DagsterEventType.RUN_CANCELED,
}
# the run-status sensors this one replaces: a deployment upgrading from them carries on from
# where they stopped instead of skipping the runs that finished in between
LEGACY = {
    "success": ("system_log_successes", "notify_successes", "loop_chain_sensor"),
    "failure": ("system_log_failures", "notify_failures", "loop_failure_sensor"),
    "canceled": ("loop_canceled_sensor",),
}


def _latest(instance: dg.DagsterInstance, event_type: dg.DagsterEventType) -> int:
    records = instance.fetch_run_status_changes(event_type, limit=1).records
    return records[0].storage_id if records else -1


def _legacy_cursor(instance: dg.DagsterInstance, names: tuple[str, ...]) -> int | None:
    """The least record id the replaced run-status sensors had reached (None: none ran here)."""
    found = []
    for state in instance.all_instigator_state():
        data = state.instigator_data
        if state.name in names and data is not None and getattr(data, "cursor", None):
            try:
                found.append(int(json.loads(data.cursor)["record_id"]))
            except (ValueError, KeyError, TypeError):
                continue
    return min(found) if found else None


def initial_cursor(instance: dg.DagsterInstance) -> dict[str, int]:
    """Start after the newest run-status change (a new deployment does not replay history),
    or where the replaced sensors stopped."""
    cursor = {}
    for outcome, event_type in OUTCOMES.items():
        legacy = _legacy_cursor(instance, LEGACY[outcome])
        cursor[outcome] = legacy if legacy is not None else _latest(instance, event_type)
    return cursor


PARTS = {"success": ("loop", "log", "notify"), "failure": ("loop", "log", "notify"),
         "canceled": ("loop",)}


def _guarded(log, what: str, run: dg.DagsterRun, part: Callable[[], object],
             failed: dict[str, str]) -> object:
    try:
        return part()
    except Exception as err:  # noqa: BLE001 - one part failing must not block the others
        failed[what] = f"{type(err).__name__}: {one_line(str(err), 300)}"
        log.warning(f"run {run.run_id}: {what} failed: {failed[what]} (tried again next tick)")
        return None


def handle_run(instance: dg.DagsterInstance, settings: Settings, run: dg.DagsterRun, outcome: str,
               log, repository: dg.RepositoryDefinition | None = None,
               parts: tuple[str, ...] | None = None) -> tuple[list[dg.RunRequest], dict[str, str]]:
    """Every part's work for one finished run (or only `parts`): the run requests to make, and
    the parts that failed with their error. `settings`: the tick's."""
    loop = LoopSettings()
    parts = PARTS[outcome] if parts is None else parts
    requests: list[dg.RunRequest] = []
    failed: dict[str, str] = {}
    if "loop" in parts:
        if outcome == "success":
            request = _guarded(log, "loop", run, lambda: chain_next(
                instance, run, settings, loop, log, repository), failed)
            if request is not None:
                requests.append(request)
        elif outcome == "failure":
            _guarded(log, "loop", run, lambda: fail_loop(instance, run, settings, loop, log), failed)
        else:
            _guarded(log, "loop", run, lambda: cancel_loop(run, settings, loop, log), failed)
    if "log" in parts:
        _guarded(log, "log", run, lambda: log_run_stages(instance, run, settings), failed)
    if "notify" in parts:
        sent = _guarded(log, "notify", run, lambda: notify_run(instance, run, settings), failed)
        if sent:
            log.info(f"run {run.run_id}: notifications {sent}")
    return requests, failed


def give_up(run: dg.DagsterRun, outcome: str, parts: dict[str, str], tries: int,
            settings: Settings, log) -> None:
    """A part failed on RETRY_TICKS ticks: say so for good (system log; a loop is marked
    failed with the reason, so its record does not claim to be running)."""
    from igs_dagster.defs.loop.sensors import _loop_id
    from igs_dagster.loop import control

    for part, error in parts.items():
        loop_id = _loop_id(run) if part == "loop" else None
        what = ("the next run could not be queued" if outcome == "success"
                else f"its run's {outcome} could not be recorded")
        detail = (f"loop {loop_id}: {what} after run {run.run_id[:8]} ({tries} tries)" if loop_id
                  else f"{part} of run {run.run_id[:8]} ({run.job_name}, {outcome}) failed {tries} times")
        log.error(f"run {run.run_id}: giving up on {part}: {error}")
        if loop_id:
            try:
                control.fail(LoopSettings().env(settings), loop_id, f"{detail}: {error}")
            except Exception as err:  # noqa: BLE001 - the log line below still says it
                log.error(f"loop {loop_id} could not be marked failed: {type(err).__name__}: {err}")
        try:
            system_log.write_entry(
                settings.system_log, "loop.handoff.failed" if loop_id else "run.outcome.failed",
                "dagster", detail, reason=error, run_id=run.run_id,
                dedupe_key=f"{run.run_id}:{part}:gave-up")
        except Exception as err:  # noqa: BLE001 - nowhere left to write it but the tick's log
            log.error(f"system log not written: {type(err).__name__}: {err}")


def _retry(instance: dg.DagsterInstance, settings: Settings, pending: dict, log,
           repository: dg.RepositoryDefinition | None) -> tuple[list[dg.RunRequest], dict]:
    """Try the failed parts of earlier ticks again; the parts still failing stay pending."""
    requests: list[dg.RunRequest] = []
    left = {}
    runs = {r.dagster_run.run_id: r.dagster_run
            for r in instance.get_run_records(dg.RunsFilter(run_ids=list(pending)))} if pending else {}
    for run_id, entry in pending.items():
        run = runs.get(run_id)
        if run is None:
            continue  # deleted meanwhile
        made, failed = handle_run(instance, settings, run, entry["outcome"], log, repository,
                                  tuple(entry["parts"]))
        requests += made
        tries = int(entry["tries"]) + 1
        if failed and tries >= RETRY_TICKS:
            give_up(run, entry["outcome"], failed, tries, settings, log)
        elif failed:
            left[run_id] = {"outcome": entry["outcome"], "parts": sorted(failed), "tries": tries,
                            "error": next(iter(failed.values()))}
    return requests, left


def outcomes_part(instance: dg.DagsterInstance, settings: Settings, cursor: dict | None, log,
                  repository: dg.RepositoryDefinition | None = None) -> tuple[list[dg.RunRequest], dict, str]:
    """Run-status changes after `cursor`, and the parts that failed before -> each part's work;
    (run requests, cursor, note). `settings`: the tick's."""
    if not cursor:
        cursor = {**initial_cursor(instance), SEEN: newest_event_record_id(instance)}
        return [], cursor, f"starting after run-status records {cursor}"
    pending = dict(cursor.get(RETRY) or {})
    cursor = {k: int(v) for k, v in cursor.items() if k != RETRY}
    requests, pending = _retry(instance, settings, pending, log, repository)
    newest = newest_event_record_id(instance)  # read first: a record added meanwhile is seen next tick
    note = f"{len(pending)} runs with parts to try again" if pending else ""
    if cursor.get(SEEN) == newest:
        return requests, _with(cursor, pending), note or "no run finished"
    found = []  # (storage id, outcome, run id)
    full = False
    for outcome, event_type in OUTCOMES.items():
        after = cursor.get(outcome, -1)
        records = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
            limit=BATCH, ascending=True,
        ).records
        found += [(r.storage_id, outcome, r.event_log_entry.run_id) for r in records]
        full = full or len(records) == BATCH
    # a full batch may leave more behind: look again next tick rather than trust `newest`
    cursor[SEEN] = -1 if full else newest
    if not found:
        return requests, _with(cursor, pending), note or "no run finished"
    runs = {r.dagster_run.run_id: r.dagster_run
            for r in instance.get_run_records(dg.RunsFilter(run_ids=list({f[2] for f in found})))}
    for storage_id, outcome, run_id in sorted(found):
        run = runs.get(run_id)
        if run is not None:
            made, failed = handle_run(instance, settings, run, outcome, log, repository)
            requests += made
            if failed:  # kept, and tried again next tick
                pending[run_id] = {"outcome": outcome, "parts": sorted(failed), "tries": 1,
                                   "error": next(iter(failed.values()))}
        cursor[outcome] = max(cursor.get(outcome, -1), storage_id)
    return requests, _with(cursor, pending), f"{len(found)} runs finished" + (f"; {note}" if note else "")


def _with(cursor: dict, pending: dict) -> dict:
    return {**cursor, RETRY: pending} if pending else cursor
