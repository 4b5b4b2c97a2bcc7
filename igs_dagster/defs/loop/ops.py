"""One op per role of the coding loop; each calls the plain role function in `loop.roles`.

Every op takes the previous op's result (a dict whose `"next"` names the role to run next)
and passes it through untouched when `"next"` is not its own role, so one job shape serves
every turn of the loop (plan said "complete": implement, review and judge do nothing).
`PermanentError` (a bad PRD, a cancelled loop) fails the step at once; anything else is
retried with exponential backoff and jitter. Roles are idempotent: a retried or re-executed
step finds what its earlier try already did (the implementor its own commit).
"""

import dagster as dg
from pydantic import Field

from igs_dagster.core.errors import PermanentError
from igs_dagster.defs.loop.resources import BEGIN_OP, LoopSettings
from igs_dagster.defs.loop.turns import submit_next
from igs_dagster.defs.resources import AgentRunner, IgsSettings
from igs_dagster.defs.retries import permanent_failures
from igs_dagster.loop import roles
from igs_dagster.loop.agent_choice import with_recorded
from igs_dagster.loop.state import load_loop

# Git, files, the loop record: short waits help. Agents: a crashed or rate-limited CLI
# gets two more tries, further apart.
ROLE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
AGENT_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
_META_KEYS = ("next", "story", "attempt", "tool", "reviewer", "verdict", "status", "reason",
              "error", "repeated", "reused", "skipped")


class LoopRunConfig(dg.Config):
    loop_id: str = Field(description="the loop this run works on (assigned at `igs loop start`)")


def _output(result: dict) -> dg.Output:
    meta = {k: result[k] for k in _META_KEYS if isinstance(result.get(k), str | int | float | bool)}
    if isinstance(result.get("checks"), dict):
        meta["checks"] = ", ".join(f"{k}: {v}" for k, v in result["checks"].items())
    if isinstance(result.get("commits"), list):
        meta["commits"] = ", ".join(c[:8] for c in result["commits"]) or "none"
    return dg.Output(result, metadata=meta)


@dg.op(
    name=BEGIN_OP,
    retry_policy=ROLE_RETRY,
    tags={"igs/role": "start"},
    description="Start the loop if it is still queued (worktree, branch, progress.txt); "
    "otherwise report the step its record says is next.",
)
def loop_begin(
    context: dg.OpExecutionContext, config: LoopRunConfig, igs: IgsSettings,
    igs_loop: LoopSettings, agent: AgentRunner,
) -> dg.Output[dict]:
    env = with_recorded(igs_loop.env(igs.get(agent)), config.loop_id)
    with permanent_failures():
        state = load_loop(env.loops_dir, config.loop_id)
        if state.status == "queued":
            request = {
                "project": state.project,
                "prd": state.prd,  # the loop's own copy, taken at intake
                "max_attempts": state.max_attempts,
                "max_iterations": state.max_iterations,
                "tools": state.tools,
                "push": state.push,
            }
            result = roles.start(env, request, loop_id=state.loop_id)
            context.log.info(f"started loop {state.loop_id} on branch {result.get('branch')}")
            return _output(result)
        if state.status in ("cancelled", "failed"):
            raise PermanentError(f"loop {state.loop_id} is {state.status}: nothing to run")
    context.log.info(f"loop {state.loop_id} is {state.status}; next step: {state.next_step}")
    return _output({
        "loop_id": state.loop_id, "next": state.next_step, "status": state.status,
        "story": state.current_story, "attempt": state.current_attempt,
    })


def _role_op(role: str, retry_policy: dg.RetryPolicy, description: str,
             ends_turn: bool = False) -> dg.OpDefinition:
    """The op of `role`; `ends_turn`: the last op of its runs, which queues the loop's next run
    (`turns.submit_next`) whether it ran the role or passed the result on."""
    function = roles.ROLES[role]

    @dg.op(
        name=f"loop_{role}", retry_policy=retry_policy, tags={"igs/role": role},
        description=description,
    )
    def _op(
        context: dg.OpExecutionContext, previous: dict, igs: IgsSettings,
        igs_loop: LoopSettings, agent: AgentRunner,
    ) -> dg.Output[dict]:
        if previous.get("next") != role:
            context.log.info(f"{role}: nothing to do, the loop's next step is {previous.get('next')!r}")
            output = dg.Output(previous, metadata={"next": str(previous.get("next")), "ran": False})
        else:
            env = with_recorded(igs_loop.env(igs.get(agent)), previous["loop_id"])
            with permanent_failures():
                result = function(env, previous["loop_id"])
            context.log.info(f"{role} -> {result.get('next')}")
            output = _output(result)
        if ends_turn and previous.get("loop_id"):
            submit_next(context, igs.get(agent), igs_loop, previous["loop_id"])
        return output

    return _op


loop_plan = _role_op("plan", ROLE_RETRY, "Pick the next story and the agent tool for its attempt.")
loop_implement = _role_op(
    "implement", AGENT_RETRY, "Run the implementor agent on the story and commit its work."
)
loop_review = _role_op(
    "review", AGENT_RETRY,
    "A separate reviewer agent writes tests from the acceptance criteria; run the checks.",
)
loop_judge = _role_op(
    "judge", ROLE_RETRY, "PASS iff every check passed; FAIL writes feedback. Queues the next run.",
    ends_turn=True,
)
loop_complete = _role_op(
    "complete", ROLE_RETRY, "Recheck skipped stories, write the summary note, push if asked."
)
loop_retro = _role_op("retro", ROLE_RETRY, "Merge the loop's figures into the playbook; retro note.")
