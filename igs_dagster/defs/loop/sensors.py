"""What moves the coding loop on: queued starts become first runs; each finished run requests
the next one; a run that failed for good marks its loop failed. No long-lived process
drives a loop: its record on disk says what comes next, these functions read it. They are
called by the two sensors every pipeline shares (one tick reads the inbox, one reads finished
runs: bench figure 10):

- `start_requests` (the inbox sensor, `defs/video/sensors.py`): `loop.start` events -> run
  `loop:{id}:0` of `loop_story`; `igs loop resume` queues the event again as retry n (the
  inbox numbers it, as `igs retry` does for videos): run `loop:{id}:resume-{n}:0`, and the
  resumed loop's later runs `loop:{id}:resume-{n}:{k}`.
- `chain_next` (the `igs_events` sensor, a loop run's SUCCESS): the run `turns.next_request`
  names, unless the run that ended pushed it already (`turns.submit_next`, with `igs dev`'s
  webserver up). Run key and `igs/turn` tag `loop:{id}:{n}`, n the number of judged attempts
  (+1 for the finish); both paths give it the run id `turns.turn_run_id(key)`, so the turn is
  queued once however the two paths interleave (`turns.submit_turn`).
- `fail_loop` (FAILURE): unless Dagster's run retries will re-run it (`dagster/will_retry`),
  `control.fail` marks the loop failed with the step's error.
- `cancel_loop` (CANCELED, e.g. from the UI or by run monitoring): the loop is cancelled too,
  so its record does not claim to be running.
"""

import dagster as dg

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.inbox import QueuedEvent
from igs_dagster.core.settings import Settings
from igs_dagster.defs.failures import run_failure_reasons
from igs_dagster.defs.loop.jobs import loop_story
from igs_dagster.defs.loop.resources import (
    BEGIN_OP,
    LOOP_TAG,
    RESUME_TAG,
    LoopSettings,
    loop_run_request,
)
from igs_dagster.defs.loop.turns import next_request, submit_turn, turn_run
from igs_dagster.loop import control
from igs_dagster.loop.state import TERMINAL, LoopState, is_cancelled, load_loop, state_path

START_EVENTS = ("loop.start",)
SENSOR_TAGS = {"dagster/sensor_name": "igs_events"}  # what the sensor's own runs carry
WILL_RETRY_TAG = "dagster/will_retry"


def start_requests(events: list[QueuedEvent], settings: Settings, igs_loop: LoopSettings,
                   log, resumes: dict[int, int] | None = None) -> list[dg.RunRequest]:
    """`loop.start` events -> the first run of each loop still queued. `resumes`: event id ->
    resume number, for the events `igs loop resume` queued again (`EventQueue.requeue`)."""
    requests = []
    resumes = resumes or {}
    for queued in events:
        if not queued.key:
            log.warning(f"event #{queued.id}: loop.start without a loop id, ignored")
            continue
        try:
            state = load_loop(settings.loops_dir, queued.key)
        except PermanentError as err:
            log.warning(f"event #{queued.id}: {err}")
            continue
        if state.status != "queued":  # cancelled before its first run
            log.info(f"loop {state.loop_id} is {state.status}: not started")
            continue
        n = resumes.get(queued.id)
        requests.append(loop_run_request(state, loop_story.name, 0, settings, igs_loop,
                                         "loop.resume" if n else "loop.start", resume=n or 0))
    if events:
        log.info(f"{len(events)} loop.start events -> {len(requests)} runs")
    return requests


def _loop_id(run: dg.DagsterRun) -> str | None:
    loop_id = run.tags.get(LOOP_TAG)
    if loop_id:
        return loop_id
    ops = (run.run_config or {}).get("ops", {})
    return ops.get(BEGIN_OP, {}).get("config", {}).get("loop_id")


def _exists(loops_dir, loop_id: str, run: dg.DagsterRun, log) -> bool:
    """Is the run's loop still there? (A loop removed from disk has nothing left to carry on;
    any other failure to read its record raises, and the outcome part tries again.)"""
    try:
        if state_path(loops_dir, loop_id).exists():
            return True
    except PermanentError:  # not a valid loop id
        pass
    log.warning(f"run {run.run_id}: loop {loop_id} no longer exists in {loops_dir}")
    return False


def before_last_resume(run: dg.DagsterRun, state: LoopState) -> bool:
    """A run from before the loop's last `igs loop resume` (its outcome may reach the sensor
    after the resume): it must not fail, cancel or chain the resumed loop."""
    try:
        return int(run.tags.get(RESUME_TAG) or 0) < state.resume
    except ValueError:
        return False


def chain_next(instance: dg.DagsterInstance, run: dg.DagsterRun, settings, igs_loop: LoopSettings,
               log, repository: dg.RepositoryDefinition | None = None) -> dg.RunRequest | None:
    """A loop run succeeded: queue the run its loop record says comes next under the turn's
    run id (`turns.submit_turn`); None when that is done or nothing is next, else the
    RunRequest to make (no run origin to launch from here)."""
    loop_id = _loop_id(run)
    if loop_id is None:
        return None  # not a loop run
    if not _exists(settings.loops_dir, loop_id, run, log):
        return None
    state = load_loop(settings.loops_dir, loop_id)  # unreadable: raises, tried again next tick
    if before_last_resume(run, state):
        log.info(f"run {run.run_id} ran before loop {loop_id} was resumed: no next run from it")
        return None
    if is_cancelled(settings.loops_dir, loop_id):
        log.info(f"loop {loop_id} is cancelled: no next run")
        return None
    request = next_request(state, settings, igs_loop)
    if request is None:
        log.info(f"loop {loop_id} is {state.status} (next: {state.next_step}): done")
        return None
    made = turn_run(instance, request)
    if made is not None and made.status != dg.DagsterRunStatus.NOT_STARTED:
        log.info(f"loop {loop_id}: next {state.next_step} already queued as run {made.run_id}")
        return None
    submitted = submit_turn(instance, repository, request, run, SENSOR_TAGS)
    if submitted is not None:
        run_id, queued = submitted
        log.info(f"loop {loop_id}: next {state.next_step} -> {request.job_name}, run {run_id} "
                 + ("queued" if queued else "already queued"))
        return None
    log.info(f"loop {loop_id}: next {state.next_step} -> {request.job_name}")
    return request


def _failure_reason(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    reasons = run_failure_reasons(instance, run.run_id)
    for step, reason in reasons.items():
        if step != "(run)":
            return f"{step}: {reason}"
    return reasons.get("(run)") or "run failed"


def fail_loop(instance: dg.DagsterInstance, run: dg.DagsterRun, settings, igs_loop: LoopSettings,
              log) -> None:
    """A loop run failed: unless Dagster's run retries will re-run it, the loop is failed."""
    loop_id = _loop_id(run)
    if loop_id is None:
        return
    if run.tags.get(WILL_RETRY_TAG) == "true":
        log.info(f"run {run.run_id} will be retried: loop {loop_id} stays as it is")
        return
    env = igs_loop.env(settings)
    if not _exists(env.loops_dir, loop_id, run, log):
        return
    error = f"run {run.run_id[:8]} ({run.job_name}) failed: {_failure_reason(instance, run)}"
    if before_last_resume(run, load_loop(env.loops_dir, loop_id)):
        log.info(f"run {run.run_id} failed before loop {loop_id} was resumed: loop left as it is")
        return
    result = control.fail(env, loop_id, error)
    log.info(f"loop {loop_id}: {result['status']} ({error})")


def cancel_loop(run: dg.DagsterRun, settings, igs_loop: LoopSettings, log) -> None:
    """A loop run was canceled (UI, run monitoring): the loop is cancelled too."""
    loop_id = _loop_id(run)
    if loop_id is None:
        return
    env = igs_loop.env(settings)
    if not _exists(env.loops_dir, loop_id, run, log):
        return
    state = load_loop(env.loops_dir, loop_id)
    if before_last_resume(run, state):
        log.info(f"run {run.run_id} was canceled before loop {loop_id} was resumed: loop left as it is")
    elif state.status not in TERMINAL:
        control.cancel(env, loop_id, f"Dagster run {run.run_id} was canceled")
        log.info(f"loop {loop_id} cancelled (its run {run.run_id} was canceled)")
