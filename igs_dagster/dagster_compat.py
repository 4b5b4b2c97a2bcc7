"""Dagster's internals, behind one door.

Every private Dagster name the project uses (a module or attribute under `dagster._…`), every
patched Dagster constant and every call into Dagster's storage that DagsterInstance does not
offer lives here, and nowhere else under igs_dagster/. igs_dagster_tests/test_dagster_compat.py
checks both: that no other module imports a private Dagster name, and, one test per entry, that
the pinned Dagster still has what the entry relies on, so an upgrade that renames or changes one
fails loudly instead of silently undoing what it was for. Each entry says why it exists and the
public alternative, where there is one.

Nothing here imports Dagster when this module is imported: `igs dev`'s supervisor (cli/stack.py)
and the CLI's daemon probe (cli/daemon_probe.py) read the names below without paying for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import dagster as dg

# ---------------------------------------------------------------------------------------------
# 1. The daemon's module. `igs dev` runs the daemon as `python -m igs_dagster.cli.dagster_entry
# dagster._daemon run …`, so the patches in entries 2 and 3 apply in its process, and `igs`
# recognises a running daemon by these names in its argv (cli/daemon_probe.py).
# Public alternative: the `dagster-daemon` console script (recognised too); it cannot be run
# with a patch applied first.
DAEMON_MODULE = "dagster._daemon"
DAEMON_SCRIPT = "dagster-daemon"


# 2. The code-server watch. The webserver and the daemon poll the code server's id every
# `dagster._grpc.server_watcher.WATCH_INTERVAL` (1 s) to notice a reloaded location; `igs dev`
# restarts its code server only after a crash, so it polls every `seconds` instead: at rest the
# 120 gRPC calls a minute were about a fifth of what the stack cost (bench figure 10).
# Public alternative: none (no option of the webserver or the daemon sets it).
def slow_code_server_watch(seconds: float) -> bool:
    """Patch the watch interval in this process (before the webserver/daemon start); False
    when Dagster no longer has it (then nothing is patched, and the compat test fails)."""
    from dagster._grpc import server_watcher

    if not hasattr(server_watcher, "WATCH_INTERVAL"):
        return False
    server_watcher.WATCH_INTERVAL = seconds
    return True


# 3. The run-retry consumer's interval: the daemon reads new run failures (to start the retry
# of a crashed run) every 5 s unless this undocumented variable says otherwise (read by
# dagster._daemon.auto_run_reexecution.event_log_consumer at import).
# Public alternative: none.
RETRY_CONSUMER_INTERVAL_ENV = "DAGSTER_EVENT_LOG_CONSUMER_DAEMON_INTERVAL_SECONDS"


# 4. Pool-slot re-checks. A step waiting for a pool slot re-checks with a back-off that grows to
# `MAX_CONCURRENCY_CLAIM_BLOCKED_INTERVAL` (15 s) in
# dagster._core.execution.plan.instance_concurrency_context, so in a backfill the `gpu` slot sat
# free for up to 8 s between transcriptions (bench figure 3). Capped at `seconds` instead.
# Public alternative: none (the instance's `concurrency:` config has no such setting).
def recheck_pool_slots_every(seconds: float) -> bool:
    """Patch the cap in this process; False when Dagster no longer has it."""
    try:
        from dagster._core.execution.plan import instance_concurrency_context as claims
    except ImportError:  # pragma: no cover - the compat test fails then
        return False
    if not hasattr(claims, "MAX_CONCURRENCY_CLAIM_BLOCKED_INTERVAL"):
        return False
    claims.MAX_CONCURRENCY_CLAIM_BLOCKED_INTERVAL = seconds
    return True


# 5. The sensor daemon's wake-up: it evaluates due sensors every
# `dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME` seconds, and skips a sensor whose last tick
# began less than its interval ago. `igs_events` asks for just under this, so it ticks on every
# wake-up (defs/events.py). Nothing is patched; the test says when Dagster changes it.
SENSOR_DAEMON_WAKE_S = 5


# 6. The tag the DefaultRunLauncher puts on each run: where its code server (and so its run
# worker) lives. The run-worker watchdog checks only workers on this machine.
# Public alternative: none (the launcher's own bookkeeping).
GRPC_INFO_TAG = ".dagster/grpc_info"


# 7. A run whose worker died without a word, reported failed with Dagster's own reason
# (UNEXPECTED_TERMINATION, from dagster._core.events), which the UI shows and run retries read.
# Public alternative: `instance.report_run_failed(run, message)`, without the reason.
def report_worker_gone(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str) -> None:
    from dagster._core.events import JobFailureData, RunFailureReason

    instance.report_run_failed(run, message, job_failure_data=JobFailureData(
        error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION))


# 8. The pool slots a run holds, freed at once (the watchdog, for a run whose worker is gone).
# Public alternative: run monitoring's `free_slots_after_run_end_seconds` (dagster.yaml) frees
# them a pass or two later; the UI's pool page frees them by hand.
def free_pool_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run_id)


# 9. The newest record id of the event log: one query tells an idle `igs_events` tick that no
# run finished since the last one (defs/outcomes.py).
# Public alternative: `instance.fetch_run_status_changes(status, limit=1)` once per run status
# (three queries per tick instead of one).
def newest_event_record_id(instance: dg.DagsterInstance) -> int:
    return instance.event_log_storage.get_maximum_record_id() or 0


# 10. Asset-check executions, newest first, with their status as text (for `igs status`).
# Public alternative: the GraphQL API's asset-check executions (a webserver must be up).
@dataclass(frozen=True)
class CheckExecution:
    partition: str | None
    status: str  # "PLANNED", "SUCCEEDED" or "FAILED"
    run_id: str
    description: str | None
    at: float


def check_executions(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey,
                     limit: int) -> list[CheckExecution]:
    found = []
    for record in instance.event_log_storage.get_asset_check_execution_history(check_key, limit=limit):
        # a planned check's "evaluation" is its plan, without a description
        description = getattr(record.evaluation, "description", None)
        found.append(CheckExecution(record.partition, record.status.value, record.run_id,
                                    description, record.create_timestamp))
    return found


# 11. Steps stranded beside a free pool slot (the `igs_watchdog` sensor).
#
# Dagster (1.13, SQL event-log storage) hands a freed slot to the oldest waiting step at the
# moment the slot is freed. A step that starts waiting in that same moment can miss the hand-off:
#   1. it looks for an unassigned slot and finds none (the other step still holds it),
#   2. the other step frees the slot and finds nobody waiting, so no step is assigned,
#   3. it registers as waiting, unassigned, beside a free slot.
# It then waits until some other step frees a slot, which never happens when it was the last
# transcription: durability drill 2 caught a transcript waiting 14 minutes. On every watchdog
# pass, each pool's free slots go to its waiting steps, oldest first, as Dagster's free path would
# have done; the slot rows themselves are the semaphore (`claim_concurrency_slot`), so a step
# assigned twice over still never runs beside another. docs/pool-slot-race.md reproduces the race
# on a bare Dagster instance (for a report upstream; remove this entry once Dagster fixes it).
# Public alternative: none; run monitoring does not look at waiting steps.
def stranded_pool_slots(instance: dg.DagsterInstance) -> dict[str, int]:
    """Per pool: how many waiting steps could have a slot that nobody holds or was given."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    found = {}
    for key, info in storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).items():
        free = info.slot_count - info.assigned_step_count
        if free > 0 and info.pending_step_count > 0:
            found[key] = min(free, info.pending_step_count)
    return found


def assign_stranded_pool_slots(instance: dg.DagsterInstance, log) -> str:
    """Give each pool's free slots to its waiting steps; one line for the sensor's note."""
    found = stranded_pool_slots(instance)
    for key, count in found.items():
        for _ in range(count):
            instance.event_log_storage.assign_pending_steps([key])
        log.warning(f"pool {key}: {count} waiting step(s) had missed a free slot; assigned now")
    if not found:
        return "pool slots: none stranded"
    return "pool slots: " + ", ".join(f"{key} {count} assigned" for key, count in found.items())
