"""Which run carries a coding loop on, and the run that ends a turn submitting it itself.

`next_request` reads the loop record: next=plan -> `loop_story`, next=implement -> `loop_attempt`,
nothing left to plan / next=complete -> `loop_finish`, done/cancelled/failed -> nothing. Its run
key `loop:{id}:{n}` (n: judged attempts, +1 for the finish) is also the run's `igs/turn` tag.

Two paths submit that run, and the turn tag keeps them to one run:
- push (`submit_next`, the last op of a `loop_story`/`loop_attempt` run): with `igs dev`'s
  webserver recorded in `<data>/webserver.json`, GraphQL `launchRun` queues the next run
  before this one ends; the run queue starts it as soon as this run frees its project's slot.
  The sensor would only see this run end at its next tick (every 5 s: 1.5 s a story on
  average, bench figure 7).
- sensor (`chain_next` in `sensors.py`, on this run's SUCCESS): the durable path, for a
  webserver that is down, not recorded (Docker, plain `dagster-daemon`) or refused; it requests
  the run unless one with the same turn tag exists.
"""

from __future__ import annotations

import os

import dagster as dg

from igs_dagster.core import webserver
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
PUSH_TIMEOUT_S = 10.0  # a timeout that fires after the run was made is harmless: the sensor sees its turn tag
LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""


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


def turn_run_id(instance: dg.DagsterInstance, request: dg.RunRequest) -> str | None:
    """The run already made for this turn (pushed, or requested by an earlier tick), if any."""
    found = instance.get_run_ids(dg.RunsFilter(tags={TURN_TAG: request.tags[TURN_TAG]}), limit=1)
    return found[0] if found else None


def launch(url: str, origin, request: dg.RunRequest, timeout: float = PUSH_TIMEOUT_S) -> str:
    """Queue `request` through the webserver at `url` (GraphQL `launchRun`): the new run's id.
    `origin`: this run's RemoteJobOrigin (the code location and repository to launch from).
    WebserverError when the webserver refuses; OSError when nothing answers."""
    params = {
        "selector": {
            "repositoryLocationName": origin.location_name,
            "repositoryName": origin.repository_origin.repository_name,
            "jobName": request.job_name,
        },
        "runConfigData": request.run_config,
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in request.tags.items()]},
    }
    data = webserver.query(url, LAUNCH_RUN, {"executionParams": params}, timeout=timeout)
    if data is None:
        raise OSError(f"webserver {url} did not answer")
    result = data.get("launchRun") or {}
    if result.get("__typename") == "RunConfigValidationInvalid":
        errors = "; ".join(str(e.get("message")) for e in result.get("errors") or [])
        raise webserver.WebserverError(f"run config refused: {errors}")
    return webserver.require(result, "LaunchRunSuccess")["run"]["runId"]


def submit_next(context: dg.OpExecutionContext, settings: Settings, igs_loop: LoopSettings,
                loop_id: str) -> str | None:
    """Push the loop's next run from the run ending this turn; the run's id, or None (nothing
    next, no webserver, already submitted, refused: the sensor then chains as before).
    Never raises: this run's work is done and recorded whatever happens here."""
    try:
        origin = context.dagster_run.remote_job_origin
        home = os.environ.get("DAGSTER_HOME") or context.instance.root_directory
        url = webserver.find(settings.data_dir, home)
        if origin is None or url is None or is_cancelled(settings.loops_dir, loop_id):
            return None
        state = load_loop(settings.loops_dir, loop_id)
        request = next_request(state, settings, igs_loop, trigger="loop.push")
        if request is None or turn_run_id(context.instance, request):
            return None
        run_id = launch(url, origin, request)
    except Exception as err:  # noqa: BLE001 - the sensor is the fallback for every failure
        context.log.warning(f"next run of loop {loop_id} not pushed ({type(err).__name__}: "
                            f"{err}); the igs_events sensor will request it")
        return None
    context.log.info(f"loop {loop_id}: next {state.next_step} -> {request.job_name}, "
                     f"run {run_id} queued through the webserver")
    return run_id

