"""What the coding loop's ops and sensors share: timeouts, run tags, the run request."""

import hashlib
from pathlib import Path

import dagster as dg

from igs_dagster.core.settings import Settings
from igs_dagster.defs.instance import PROJECT_TAG
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.state import LoopState

LOOP_TAG = "igs/loop"
TRIGGER_TAG = "igs/trigger"
RESUME_TAG = "igs/resume"
TURN_TAG = "igs/turn"  # the run key: one run per turn, pushed or requested (defs/loop/turns.py)
MAX_RUNTIME_TAG = "dagster/max_runtime"
BEGIN_OP = "loop_begin"


def project_hash(project: str | Path) -> str:
    """Short stable id of a project folder: the `igs/project` tag value (one run at a time)."""
    return hashlib.sha256(str(Path(project).resolve()).encode()).hexdigest()[:12]


class LoopSettings(dg.ConfigurableResource):
    """Timeouts of the coding loop's roles. The implementor's and the reviewer's agent timeout
    is the agent setting `IGS_AGENT__TIMEOUT_S` (default 900 s = 15 min); each check command
    gets `check_timeout_s`; a stopped agent gets `grace_s` between SIGTERM and SIGKILL."""

    check_timeout_s: float = 900.0
    grace_s: float = 5.0

    def env(self, settings: Settings) -> LoopEnv:
        return LoopEnv.from_settings(
            settings, check_timeout_s=self.check_timeout_s, grace_s=self.grace_s
        )

    def max_runtime_s(self, settings: Settings) -> int:
        """`dagster/max_runtime` of a loop run: twice the longest legitimate pass (implementor
        + reviewer at their timeout, three checks at theirs) plus 10 minutes, so run monitoring
        ends only a run worker that is stuck outside every role timeout."""
        one_pass = 2 * settings.agent.timeout_s + 3 * self.check_timeout_s
        return int(2 * one_pass + 600)


def run_config(loop_id: str) -> dict:
    return {"ops": {BEGIN_OP: {"config": {"loop_id": loop_id}}}}


def loop_run_request(
    state: LoopState,
    job_name: str,
    number: int,
    settings: Settings,
    loop_settings: LoopSettings,
    trigger: str,
    resume: int | None = None,
) -> dg.RunRequest:
    """Run `number` of a loop. The run key `loop:{id}:{n}` makes a re-evaluated tick no second
    run; after `igs loop resume` it is `loop:{id}:resume-{r}:{n}` (r: the resume's number, by
    default the loop record's last), so a resumed loop's runs are not taken for its earlier
    ones. `igs/project` lets the run queue hold one run per project at a time."""
    resume = state.resume if resume is None else resume
    key = f"loop:{state.loop_id}:resume-{resume}:{number}" if resume else f"loop:{state.loop_id}:{number}"
    return dg.RunRequest(
        run_key=key,
        job_name=job_name,
        run_config=run_config(state.loop_id),
        tags={
            PROJECT_TAG: project_hash(state.project),
            LOOP_TAG: state.loop_id,
            MAX_RUNTIME_TAG: str(loop_settings.max_runtime_s(settings)),
            TRIGGER_TAG: trigger,
            TURN_TAG: key,
            **({RESUME_TAG: str(resume)} if resume else {}),
        },
    )


defs = dg.Definitions(resources={"igs_loop": LoopSettings()})
