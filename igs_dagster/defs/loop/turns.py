"""Which run carries a coding loop on, and the two paths that queue it: one run per turn.

`next_request` reads the loop record: next=plan -> `loop_story`, next=implement -> `loop_attempt`,
nothing left to plan / next=complete -> `loop_finish`, done/cancelled/failed -> nothing. Its run
key `loop:{id}:{n}` (n: judged attempts, +1 for the finish) is also the run's `igs/turn` tag.

Two paths queue that run, and both go through `submit_turn`:
- push (`submit_next`, the last op of a `loop_story`/`loop_attempt` run): the run that ends a
  turn queues the next one before it ends; the run queue starts it as soon as this run frees
  its project's slot. The sensor would only see this run end at its next tick (every 5 s:
  1.5 s a story on average, bench figure 7).
- sensor (`chain_next` in `sensors.py`, on this run's SUCCESS): the durable path, for a push
  that failed or a worker that died before it.

`submit_turn` creates the run under the turn's own run id, `turn_run_id(key)` (a UUID derived
from the turn's key), and the run storage refuses a second run with an id it already holds: the
turn is queued once by construction, however the two paths interleave (checking the turn tag
first only saves work). The run is created from the job of this code location and launched
from the code location of the run that ended (its origins), then submitted to the instance's
QueuedRunCoordinator. Neither a sensor's RunRequest nor GraphQL `launchRun` (the push's former
path, through `igs dev`'s webserver) can name a run's id: with them a push that timed out on
the client while the webserver still made the run, and the sensor's request for the same turn,
gave two runs of one turn. Where `submit_turn` is impossible (a run without origins, a run
coordinator that launches at once) nothing is pushed and the sensor returns a RunRequest with
the turn's run key, deduplicated by Dagster as before.
"""

from __future__ import annotations

import uuid

import dagster as dg

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings
from igs_dagster.defs.loop.resources import TURN_TAG, LoopSettings, loop_run_request
from igs_dagster.loop.planner import next_story
from igs_dagster.loop.prd import load_prd
from igs_dagster.loop.state import LoopState, is_cancelled, load_loop

# the job that carries on from the step a loop record names as next
JOB_FOR_NEXT = {
    "plan": "loop_story",
    "implement": "loop_attempt",
    "review": "loop_attempt",
    "judge": "loop_attempt",
    "complete": "loop_finish",
    "retro": "loop_finish",
}
TURN_IDS = uuid.UUID("0f6c4a3e-2b7d-5c1e-9a84-3d5e7b1c2a90")  # namespace of the turns' run ids
RUN_KEY_TAG = "dagster/run_key"


def _judged(state: LoopState) -> int:
    return sum(1 for r in state.stories.values() for a in r.attempts if a.verdict is not None)


def _nothing_to_plan(state: LoopState) -> bool:
    if state.out_of_iterations():
        return True
    try:
        return next_story(load_prd(state.prd), state) is None
    except PermanentError:
        return False  # let the planner say what is wrong


def next_request(state: LoopState, settings: Settings, igs_loop: LoopSettings,
                 trigger: str = "loop.chain") -> dg.RunRequest | None:
    """The run that carries the loop on from its record, or None when nothing is left."""
    if state.status in ("cancelled", "failed") or state.next_step in (None, "done"):
        return None
    job = JOB_FOR_NEXT.get(state.next_step)
    if job is None:
        return None
    if state.next_step == "plan" and _nothing_to_plan(state):
        job = "loop_finish"
    number = _judged(state) + (1 if job == "loop_finish" else 0)
    return loop_run_request(state, job, number, settings, igs_loop, trigger)


def turn_run_id(key: str) -> str:
    """The run id of turn `key` (`loop:{id}:{n}`), the same on every path that submits it."""
    return str(uuid.uuid5(TURN_IDS, key))


def turn_run(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.DagsterRun | None:
    """The run already made for this turn, if any: by its run id, or by its turn tag (runs
    requested through a RunRequest, or made before turns had their own run ids)."""
    key = request.tags[TURN_TAG]
    run = instance.get_run_by_id(turn_run_id(key))
    if run is not None:
        return run
    found = instance.get_run_ids(dg.RunsFilter(tags={TURN_TAG: key}), limit=1)
    return instance.get_run_by_id(found[0]) if found else None


def submit_turn(instance: dg.DagsterInstance, repository: dg.RepositoryDefinition | None,
                request: dg.RunRequest, ended: dg.DagsterRun, tags: dict[str, str]
                ) -> tuple[str, bool] | None:
    """Create the turn's run under its run id and queue it, launched from the code location of
    `ended` (the run that ended the previous turn); `tags` are added to the request's.
    Returns (run id, whether this call queued it), or None when that is impossible here (no
    repository or run origin, a run coordinator that launches at once): make a RunRequest."""
    origin, code = ended.remote_job_origin, ended.job_code_origin
    if (repository is None or origin is None or code is None
            or not isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)):
        return None
    run = turn_run(instance, request)
    if run is None:
        job = repository.get_job(request.job_name)
        key = request.tags[TURN_TAG]
        try:
            run = instance.create_run_for_job(
                job, run_id=turn_run_id(key), run_config=request.run_config,
                tags={**job.run_tags, **request.tags, RUN_KEY_TAG: key, **tags},
                status=dg.DagsterRunStatus.NOT_STARTED,
                remote_job_origin=type(origin)(repository_origin=origin.repository_origin, job_name=job.name),
                job_code_origin=type(code)(job.name, code.repository_origin),
            )
        except dg.DagsterError:  # DagsterRunAlreadyExists: the other path made it meanwhile
            run = instance.get_run_by_id(turn_run_id(key))
            if run is None:  # any other error
                raise
    if run is None or run.status != dg.DagsterRunStatus.NOT_STARTED:
        return (run.run_id, False) if run is not None else None
    # created and not yet queued (by us now, or by a path that died in between): queue it
    instance.submit_run(run.run_id, workspace=None)  # the queued coordinator needs no workspace
    return run.run_id, True


def submit_next(context: dg.OpExecutionContext, settings: Settings, igs_loop: LoopSettings,
                loop_id: str) -> str | None:
    """Queue the loop's next run from the run ending this turn (`push_next`)."""
    try:
        repository = context.repository_def
    except Exception:  # noqa: BLE001 - an ad-hoc execution without one: the sensor chains
        repository = None
    return push_next(context.instance, repository, context.dagster_run, settings, igs_loop,
                     loop_id, context.log)


def push_next(instance: dg.DagsterInstance, repository: dg.RepositoryDefinition | None,
              ending: dg.DagsterRun, settings: Settings, igs_loop: LoopSettings, loop_id: str,
              log) -> str | None:
    """Queue the loop's next run while `ending` still runs; the run's id, or None (nothing
    next, cancelled, impossible here, failed: the sensor then chains as before). Never raises:
    the ending run's work is done and recorded whatever happens here."""
    try:
        if is_cancelled(settings.loops_dir, loop_id):
            return None
        state = load_loop(settings.loops_dir, loop_id)
        request = next_request(state, settings, igs_loop, trigger="loop.push")
        submitted = submit_turn(instance, repository, request, ending, {}) if request else None
    except Exception as err:  # noqa: BLE001 - the sensor is the fallback for every failure
        log.warning(f"next run of loop {loop_id} not queued ({type(err).__name__}: {err}); "
                    "the igs_events sensor will request it")
        return None
    if submitted is None:
        return None
    run_id, queued = submitted
    log.info(f"loop {loop_id}: next {state.next_step} -> {request.job_name}, run {run_id} "
             + ("queued" if queued else "already queued"))
    return run_id
