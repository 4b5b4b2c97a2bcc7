"""Sensors of the coding loop: queued starts become first runs; each finished run requests
the next one; a run that failed for good marks its loop failed. No long-lived process
drives a loop: its record on disk says what comes next, the sensors read it.

- `loop_start_sensor`: `loop.start` events after its cursor (the last queue event id, stored
  with the tick's run requests) -> run `loop:{id}:0` of `loop_story`.
- `loop_chain_sensor` (run SUCCESS of a loop job): next=plan -> `loop_story`,
  next=implement -> `loop_attempt`, nothing left to plan / next=complete -> `loop_finish`,
  done/cancelled/failed -> nothing. Run key `loop:{id}:{n}` with n the number of judged
  attempts (+1 for the finish), so a tick evaluated twice launches nothing twice.
- `loop_failure_sensor` (run FAILURE): unless Dagster's run retries will re-run it
  (`dagster/will_retry`), `roles.fail` marks the loop failed with the step's error.
- `loop_canceled_sensor` (run CANCELED, e.g. from the UI or by run monitoring): the loop is
  cancelled too, so its record does not claim to be running.
"""

import dagster as dg

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.text import first_line
from igs_dagster.defs.failures import step_failure_reason
from igs_dagster.defs.loop.jobs import JOB_FOR_NEXT, LOOP_JOBS, loop_story
from igs_dagster.defs.loop.resources import (
    BEGIN_OP,
    LOOP_TAG,
    LoopSettings,
    loop_run_request,
)
from igs_dagster.defs.resources import IgsSettings
from igs_dagster.loop import roles
from igs_dagster.loop.planner import next_story
from igs_dagster.loop.prd import load_prd
from igs_dagster.loop.state import TERMINAL, LoopState, is_cancelled, load_loop

BATCH = 100
WILL_RETRY_TAG = "dagster/will_retry"
# A loop waits for these sensors between every two stories (bench figure 7): a tick on every
# wake-up of the sensor daemon (every 5 s; see defs/video/sensors.py INTERVAL_S). The query
# behind a tick is one indexed read of new run events.
CHAIN_INTERVAL_S = 4
# Failed and canceled loop runs only update the loop record: every other wake-up is enough (each
# tick of a run-status sensor re-opens the instance in the code server: CPU beside transcription).
OUTCOME_INTERVAL_S = 10


@dg.sensor(
    name="loop_start_sensor",
    jobs=[loop_story],
    minimum_interval_seconds=CHAIN_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Queued `loop.start` events -> the first run of each loop.",
)
def loop_start_sensor(
    context: dg.SensorEvaluationContext, igs: IgsSettings, igs_loop: LoopSettings
):
    cursor = int(context.cursor or 0)
    events = igs.queue().after(cursor, limit=BATCH, names=("loop.start",))
    if not events:
        return dg.SkipReason(f"no loop starts after #{cursor}")
    settings = igs.get()
    requests = []
    for queued in events:
        if not queued.key:
            context.log.warning(f"event #{queued.id}: loop.start without a loop id, ignored")
            continue
        try:
            state = load_loop(settings.loops_dir, queued.key)
        except PermanentError as err:
            context.log.warning(f"event #{queued.id}: {err}")
            continue
        if state.status != "queued":  # cancelled before its first run
            context.log.info(f"loop {state.loop_id} is {state.status}: not started")
            continue
        requests.append(
            loop_run_request(state, loop_story.name, 0, settings, igs_loop, "loop.start")
        )
    context.log.info(f"{len(events)} loop.start events -> {len(requests)} runs")
    return dg.SensorResult(run_requests=requests, cursor=str(events[-1].id))


def _loop_id(run: dg.DagsterRun) -> str | None:
    loop_id = run.tags.get(LOOP_TAG)
    if loop_id:
        return loop_id
    ops = (run.run_config or {}).get("ops", {})
    return ops.get(BEGIN_OP, {}).get("config", {}).get("loop_id")


def _judged(state: LoopState) -> int:
    return sum(1 for r in state.stories.values() for a in r.attempts if a.verdict is not None)


def _nothing_to_plan(state: LoopState) -> bool:
    if state.iterations_used >= state.max_iterations:
        return True
    try:
        return next_story(load_prd(state.prd), state) is None
    except PermanentError:
        return False  # let the planner say what is wrong


def next_request(state: LoopState, settings, igs_loop: LoopSettings) -> dg.RunRequest | None:
    """The run that carries the loop on from its record, or None when nothing is left."""
    if state.status in ("cancelled", "failed") or state.next_step in (None, "done"):
        return None
    job = JOB_FOR_NEXT.get(state.next_step)
    if job is None:
        return None
    if state.next_step == "plan" and _nothing_to_plan(state):
        job = "loop_finish"
    number = _judged(state) + (1 if job == "loop_finish" else 0)
    return loop_run_request(state, job, number, settings, igs_loop, "loop.chain")


@dg.run_status_sensor(
    name="loop_chain_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=list(LOOP_JOBS),
    request_jobs=list(LOOP_JOBS),
    minimum_interval_seconds=CHAIN_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A loop run succeeded -> request the run its loop record says comes next.",
)
def loop_chain_sensor(
    context: dg.RunStatusSensorContext, igs: IgsSettings, igs_loop: LoopSettings
):
    run = context.dagster_run
    loop_id = _loop_id(run)
    settings = igs.get()
    if loop_id is None:
        context.log.warning(f"run {run.run_id}: no {LOOP_TAG} tag, nothing to chain")
        return None
    try:
        state = load_loop(settings.loops_dir, loop_id)
    except PermanentError as err:
        context.log.warning(f"run {run.run_id}: {err}")
        return None
    if is_cancelled(settings.loops_dir, loop_id):
        context.log.info(f"loop {loop_id} is cancelled: no next run")
        return None
    request = next_request(state, settings, igs_loop)
    if request is None:
        context.log.info(f"loop {loop_id} is {state.status} (next: {state.next_step}): done")
        return None  # None: the sensor goes on with other finished runs in this tick
    context.log.info(f"loop {loop_id}: next {state.next_step} -> {request.job_name}")
    return request


def _failure_reason(context: dg.RunFailureSensorContext) -> str:
    for event in context.get_step_failure_events():
        return f"{event.step_key}: {step_failure_reason(event)}"
    return first_line(context.failure_event.message) or "run failed"


@dg.run_failure_sensor(
    name="loop_failure_sensor",
    monitored_jobs=list(LOOP_JOBS),
    minimum_interval_seconds=OUTCOME_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A loop run failed and will not be retried -> the loop is marked failed.",
)
def loop_failure_sensor(
    context: dg.RunFailureSensorContext, igs: IgsSettings, igs_loop: LoopSettings
):
    run = context.dagster_run
    loop_id = _loop_id(run)
    if loop_id is None:
        return None
    if run.tags.get(WILL_RETRY_TAG) == "true":
        context.log.info(f"run {run.run_id} will be retried: loop {loop_id} stays as it is")
        return None
    env = igs_loop.env(igs.get())
    error = f"run {run.run_id[:8]} ({run.job_name}) failed: {_failure_reason(context)}"
    try:
        result = roles.fail(env, loop_id, error)
    except PermanentError as err:
        context.log.warning(str(err))
        return None
    context.log.info(f"loop {loop_id}: {result['status']} ({error})")
    return None


@dg.run_status_sensor(
    name="loop_canceled_sensor",
    run_status=dg.DagsterRunStatus.CANCELED,
    monitored_jobs=list(LOOP_JOBS),
    minimum_interval_seconds=OUTCOME_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A loop run was canceled (UI, run monitoring) -> the loop is cancelled.",
)
def loop_canceled_sensor(
    context: dg.RunStatusSensorContext, igs: IgsSettings, igs_loop: LoopSettings
):
    run = context.dagster_run
    loop_id = _loop_id(run)
    if loop_id is None:
        return None
    env = igs_loop.env(igs.get())
    try:
        state = load_loop(env.loops_dir, loop_id)
        if state.status not in TERMINAL:
            roles.cancel(env, loop_id, f"Dagster run {run.run_id} was canceled")
            context.log.info(f"loop {loop_id} cancelled (its run {run.run_id} was canceled)")
    except PermanentError as err:
        context.log.warning(str(err))
    return None
