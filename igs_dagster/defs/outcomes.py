"""Every finished run: loop bookkeeping, the system log and notifications (a part of the
`igs_events` sensor, defs/events.py).

Seven run-status sensors (system log and notifications per outcome, the loop's chain, failure
and cancel sensors) each re-read the instance on their own ticks; at rest that was most of what
an always-on `igs dev` cost (bench figure 10). This part reads the run-status changes
after its cursor (one cursor per outcome, in the index of run events) from an instance opened
once per code server (`sensor_instance`), and hands each finished run to every part that cares,
in this order:

- SUCCESS: the loop's next run (a run request, run key `loop:{id}:{n}`), then the system log's
  stage lines, then notifications;
- FAILURE: the loop marked failed (unless run retries will re-run it), the system log, then
  notifications;
- CANCELED: the loop cancelled.

Each part has its own error handling: one failing (a full disk, a notification service down)
is logged and does not keep the others from their work. Every part is idempotent on its own
keys (system-log dedupe `run:step:status`, the notification ledger, loop run keys and the
loop record's terminal states), so a tick evaluated twice does nothing twice. The loop chain
waits on it between stories, hence a tick on every daemon wake-up. An idle tick costs one
query: the newest record id of the event index, unchanged since the last tick, means no run
finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import dagster as dg
from dagster._core.definitions.run_request import InstigatorType

from igs_dagster.core.settings import load_settings
from igs_dagster.defs.loop.resources import LoopSettings
from igs_dagster.defs.loop.sensors import cancel_loop, chain_next, fail_loop
from igs_dagster.defs.system.log_sensors import log_run_stages
from igs_dagster.defs.system.notify_sensors import notify_run

BATCH = 100
SEEN = "seen"  # the cursor's key for the event index's newest record id at the last look
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
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
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


def _guarded(log, what: str, run: dg.DagsterRun, part: Callable[[], object]) -> object:
    try:
        return part()
    except Exception as err:  # noqa: BLE001 - one part failing must not block the others
        log.warning(f"run {run.run_id}: {what} failed: {type(err).__name__}: {err}")
        return None


def handle_run(instance: dg.DagsterInstance, run: dg.DagsterRun, outcome: str, log,
               repository: dg.RepositoryDefinition | None = None) -> list[dg.RunRequest]:
    """Every part's work for one finished run; the run requests to make."""
    settings = load_settings()
    loop = LoopSettings()
    requests: list[dg.RunRequest] = []
    if outcome == "success":
        request = _guarded(log, "loop chain", run, lambda: chain_next(instance, run, settings, loop, log, repository))
        if request is not None:
            requests.append(request)
    elif outcome == "failure":
        _guarded(log, "loop failure", run, lambda: fail_loop(instance, run, settings, loop, log))
    else:
        _guarded(log, "loop cancel", run, lambda: cancel_loop(run, settings, loop, log))
    if outcome in ("success", "failure"):
        _guarded(log, "system log", run, lambda: log_run_stages(instance, run, settings.system_log))
        sent = _guarded(log, "notifications", run, lambda: notify_run(instance, run, settings))
        if sent:
            log.info(f"run {run.run_id}: notifications {sent}")
    return requests


def _newest_record(instance: dg.DagsterInstance) -> int:
    return instance.event_log_storage.get_maximum_record_id() or 0


def outcomes_part(instance: dg.DagsterInstance, cursor: dict | None, log,
                  repository: dg.RepositoryDefinition | None = None) -> tuple[list[dg.RunRequest], dict, str]:
    """Run-status changes after `cursor` -> each part's work; (run requests, cursor, note)."""
    if not cursor:
        cursor = {**initial_cursor(instance), SEEN: _newest_record(instance)}
        return [], cursor, f"starting after run-status records {cursor}"
    cursor = {k: int(v) for k, v in cursor.items()}
    newest = _newest_record(instance)  # read first: a record added meanwhile is seen next tick
    if cursor.get(SEEN) == newest:
        return [], cursor, "no run finished"
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
        return [], cursor, "no run finished"
    runs = {r.dagster_run.run_id: r.dagster_run
            for r in instance.get_run_records(dg.RunsFilter(run_ids=list({f[2] for f in found})))}
    requests: list[dg.RunRequest] = []
    for storage_id, outcome, run_id in sorted(found):
        run = runs.get(run_id)
        if run is not None:
            requests += handle_run(instance, run, outcome, log, repository)
        cursor[outcome] = max(cursor.get(outcome, -1), storage_id)
    return requests, cursor, f"{len(found)} runs finished"
