"""What every role does first and records the same way, written once.

- `role(name)`: the guard each role passes before its work: the cancel flag (LoopCancelled),
  a loop that ended or never started (PermanentError), and a role the record says already
  ran (a retried Dagster step: the reply is `"repeated": True` with the step that is next).
- `Turn`: what implement, review and judge start from: the current story's attempt, the PRD,
  the worktree (re-added if someone removed it) and the attempt's folder.
- `agent_turn` / `run_checks`: an agent run or the PRD's checks for a turn, recorded in the
  attempt, stopped by a cancel.
- `reply`: the small dict every role returns, whose `"next"` names the role to run next.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from igs_dagster.core.agent_runner import AgentResult, agent_command, run_agent
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import atomic_write_text
from igs_dagster.loop import worktree
from igs_dagster.loop.checks import run_checks as run_prd_checks
from igs_dagster.loop.control import stop, stop_if_cancelled
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.prd import Prd, Story, load_prd
from igs_dagster.loop.state import (
    AgentRun,
    Attempt,
    LoopCancelled,
    LoopRecordChanged,
    LoopState,
    StoryRecord,
    attempt_dir,
    cancel_path,
    load_loop,
    pid_path,
    save_loop,
)


def reply(state: LoopState, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "loop_id": state.loop_id,
        "next": state.next_step,
        "status": state.status,
        "story": state.current_story,
        "attempt": state.current_attempt,
    }
    base.update(extra)
    return base


def enter(env: LoopEnv, loop_id: str, role: str) -> LoopState:
    """The loop record, if `role` may run on it: not cancelled, not ended, started."""
    state = load_loop(env.loops_dir, loop_id)
    stop_if_cancelled(env, state, f"is cancelled: {role} refused to start")
    # A complete loop answers "repeated" (retried steps); a push retry re-enters complete.
    if state.status in ("cancelled", "failed"):
        raise PermanentError(f"loop {loop_id} is {state.status}: nothing for {role} to do")
    if state.status == "queued" and role != "start":
        raise PermanentError(f"loop {loop_id} was never started (run start first)")
    return state


@dataclass
class Turn:
    """What implement, review and judge each start from: the current story's attempt."""

    state: LoopState
    record: StoryRecord
    attempt: Attempt
    prd: Prd
    story: Story
    wt: Path
    folder: Path


def _open_turn(env: LoopEnv, state: LoopState) -> Turn:
    record, attempt = state.current()
    prd = load_prd(Path(state.prd))
    story = prd.story(record.id)
    wt = worktree_of(state)
    folder = attempt_dir(env.loops_dir, state.loop_id, story.id, attempt.number)
    folder.mkdir(parents=True, exist_ok=True)
    return Turn(state, record, attempt, prd, story, wt, folder)


def role(name: str, *, turn: bool = False) -> Callable:
    """Make `body(env, state)` (or `body(env, turn)` with `turn=True`) the role `name`,
    called as `role(env, loop_id)`: it runs only past the guard (`enter`) and only when the
    record names it next; otherwise it answers `"repeated": True`."""

    def wrap(body: Callable[[LoopEnv, Any], dict[str, Any]]) -> Callable[[LoopEnv, str], dict[str, Any]]:
        @functools.wraps(body)
        def run(env: LoopEnv, loop_id: str) -> dict[str, Any]:
            state = enter(env, loop_id, name)
            if state.next_step != name:
                return reply(state, repeated=True)
            return body(env, _open_turn(env, state) if turn else state)

        return run

    return wrap


def worktree_of(state: LoopState) -> Path:
    """The loop's worktree, re-added from its branch if someone removed the folder."""
    path = Path(state.worktree)
    if not (path / ".git").exists():
        worktree.create_worktree(Path(state.project), path, state.branch)
    return path


def agent_turn(env: LoopEnv, turn: Turn, role: str, tool: str, prompt: str,
               doing: str) -> AgentResult:
    """Run `tool` for `role` ("implement" or "review") on `prompt`, record it in the attempt;
    a cancel while it runs marks the loop cancelled and raises LoopCancelled."""
    prompt_path = atomic_write_text(turn.folder / f"{role}-prompt.md", prompt)
    result = run_agent(
        tool,
        prompt,
        turn.wt,
        turn.folder / f"{role}-output.log",
        timeout_s=env.timeout_s,
        argv=agent_command(tool, env.agent),
        env=env.env,
        pid_file=pid_path(env.loops_dir, turn.state.loop_id),
        cancel_file=cancel_path(env.loops_dir, turn.state.loop_id),
        grace_s=env.grace_s,
    )
    setattr(turn.attempt, role, _agent_run(result, prompt_path))
    turn.attempt.durations[role] = round(result.duration_s, 3)
    if result.cancelled:
        with contextlib.suppress(LoopCancelled, LoopRecordChanged):  # cancelled meanwhile
            save_loop(env.loops_dir, turn.state)
        stop(env, turn.state, f"cancelled while {tool} was {doing}")
    return result


def _agent_run(result: AgentResult, prompt_path: Path) -> AgentRun:
    return AgentRun(
        tool=result.tool,
        argv=list(result.argv),
        returncode=result.returncode,
        timed_out=result.timed_out,
        cancelled=result.cancelled,
        duration_s=round(result.duration_s, 3),
        prompt_path=str(prompt_path),
        output_path=str(result.output_path),
        tail=result.tail[-2000:],
    )


def failure(result: AgentResult, timeout_s: float) -> str:
    if result.timed_out:
        return f"timed out after {timeout_s:g} s"
    return f"exited with code {result.returncode}"


def run_checks(env: LoopEnv, state: LoopState, prd: Prd, wt: Path, folder: Path) -> list:
    """The PRD's checks in the worktree, output under `folder`/checks, stopped by a cancel."""
    return run_prd_checks(prd.checks, wt, folder / "checks", timeout_s=env.check_timeout_s,
                          env=env.check_env(), cancel_file=cancel_path(env.loops_dir, state.loop_id))
