"""One plain function per role of the coding loop; the Dagster ops call these.

Every role takes a `LoopEnv` (folders, agent settings, timeouts) and a loop id, reads and
writes the loop record, refuses to start when the loop's cancel flag is set (`LoopCancelled`),
and returns a small dict whose `"next"` names the role to run next::

    start     -> {"next": "plan", ...}
    plan      -> {"next": "implement", "story", "attempt", "tool", ...} | {"next": "complete"}
    implement -> {"next": "review", ...} | {"next": "judge", "ok": False, "error"}  (agent failed)
    review    -> {"next": "judge", "checks": {...}, ...}
    judge     -> {"next": "plan", "verdict": "PASS"} | {"next": "implement", "verdict": "FAIL",
                 "attempt": n + 1, ...} | {"next": "plan", "verdict": "FAIL", "skipped": True}
                 | {"next": "complete", ...} (iterations used up)
    complete  -> {"next": "retro", "status": "complete", "passed": [...], ...}
    retro     -> {"next": "done", "retro_note", "playbook"}

A role called again after it finished (a retried Dagster step) does not redo its work: it
answers with `"repeated": True` and the step the record says is next. A retried implementor
finds its own commit by its message marker and does not run the agent or commit again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from igs_dagster.core.agent_runner import AgentResult, agent_command, kill_from_pid_file, run_agent
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import LoopStartData, describe_validation_error
from igs_dagster.core.fsutil import atomic_write_text
from igs_dagster.core.redact import child_env
from igs_dagster.core.settings import AgentSettings
from igs_dagster.loop import progress, worktree
from igs_dagster.loop.checks import run_checks
from igs_dagster.loop.judge import verdict
from igs_dagster.loop.planner import (
    check_overrides,
    choose_reviewer,
    choose_tool,
    next_story,
    story_kind,
)
from igs_dagster.loop.playbook import load_playbook, loop_stats, merge_loop, playbook_path
from igs_dagster.loop.prd import Prd, Story, load_prd, save_prd
from igs_dagster.loop.prompt import (
    commit_message,
    implementor_prompt,
    marker,
    read_guidance,
    reviewer_prompt,
)
from igs_dagster.loop.retro import write_retro
from igs_dagster.loop.state import (
    TERMINAL,
    AgentRun,
    Attempt,
    LoopCancelled,
    LoopRecordChanged,
    LoopState,
    StoryRecord,
    attempt_dir,
    cancel_path,
    is_cancelled,
    load_loop,
    loop_dir,
    new_loop,
    pid_path,
    request_cancel,
    save_loop,
    update_loop,
    utc_now,
)
from igs_dagster.loop.summary import write_summary

PROGRESS = progress.PROGRESS_FILE


@dataclass(frozen=True)
class LoopEnv:
    """Where loops live and how agents and checks run. `from_settings` for the real thing;
    tests build one with stand-in agent commands in `agent` (`AgentSettings.codex_command`...)."""

    loops_dir: Path
    vault_dir: Path
    agent: AgentSettings = field(default_factory=AgentSettings)
    agent_timeout_s: float | None = None  # default: agent.timeout_s
    check_timeout_s: float = 900.0
    grace_s: float = 5.0
    env: Mapping[str, str] | None = None  # extra environment for agents and checks

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> LoopEnv:
        return cls(settings.loops_dir, settings.vault_dir, settings.agent, **overrides)

    @property
    def timeout_s(self) -> float:
        return self.agent_timeout_s or self.agent.timeout_s

    def check_env(self) -> dict[str, str]:
        """Check commands run the PRD's code: the allowlisted environment, no secrets."""
        return child_env(None, self.env)


# ---- shared helpers -----------------------------------------------------------------------


def _reply(state: LoopState, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "loop_id": state.loop_id,
        "next": state.next_step,
        "status": state.status,
        "story": state.current_story,
        "attempt": state.current_attempt,
    }
    base.update(extra)
    return base


def _mark_cancelled(env: LoopEnv, state: LoopState) -> LoopState:
    """Mark the newest record cancelled (not `state`, which a role may have held for minutes)."""

    def mark(current: LoopState) -> bool:
        if current.status in TERMINAL:
            return False
        path = cancel_path(env.loops_dir, current.loop_id)
        flag = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        # the flag is "<when> <reason>" (state.request_cancel); the reason alone is shown
        reason = flag.split(" ", 1)[1] if " " in flag else flag or "cancelled"
        current.status = "cancelled"
        current.stop_reason = reason  # "cancelled by user", "Dagster run ... was canceled"
        current.next_step = None
        current.finished_at = utc_now()
        return True

    return update_loop(env.loops_dir, state.loop_id, mark)


def _enter(env: LoopEnv, loop_id: str, role: str) -> LoopState:
    state = load_loop(env.loops_dir, loop_id)
    if is_cancelled(env.loops_dir, loop_id):
        _mark_cancelled(env, state)
        raise LoopCancelled(f"loop {loop_id} is cancelled: {role} refused to start")
    # A complete loop answers "repeated" (retried steps); a push retry re-enters complete.
    if state.status in ("cancelled", "failed"):
        raise PermanentError(f"loop {loop_id} is {state.status}: nothing for {role} to do")
    if state.status == "queued" and role != "start":
        raise PermanentError(f"loop {loop_id} was never started (run start first)")
    return state


@dataclass
class _Turn:
    """What implement, review and judge each start from: the current story's attempt."""

    state: LoopState
    record: StoryRecord
    attempt: Attempt
    prd: Prd
    story: Story
    wt: Path
    folder: Path


def _begin(env: LoopEnv, loop_id: str, role: str) -> tuple[LoopState, _Turn | None]:
    """Enter `role` for the current attempt; no turn when the record says another role is
    next (a retried step that already ran: the caller answers "repeated")."""
    state = _enter(env, loop_id, role)
    if state.next_step != role:
        return state, None
    record, attempt = state.current()
    prd = load_prd(Path(state.prd))
    story = prd.story(record.id)
    wt = _worktree(state)
    folder = _attempt_dir(env, state, story.id, attempt.number)
    return state, _Turn(state, record, attempt, prd, story, wt, folder)


def _agent_turn(env: LoopEnv, turn: _Turn, role: str, tool: str, prompt: str,
                doing: str) -> AgentResult:
    """Run `tool` for `role` ("implement" or "review") on `prompt`, record it in the attempt;
    a cancel while it runs marks the loop cancelled and raises LoopCancelled."""
    prompt_path = atomic_write_text(turn.folder / f"{role}-prompt.md", prompt)
    result = _run(env, turn.state, tool, prompt, turn.wt, turn.folder / f"{role}-output.log")
    setattr(turn.attempt, role, _agent_run(result, prompt_path))
    turn.attempt.durations[role] = round(result.duration_s, 3)
    if result.cancelled:
        with contextlib.suppress(LoopCancelled, LoopRecordChanged):  # cancelled meanwhile
            save_loop(env.loops_dir, turn.state)
        _mark_cancelled(env, turn.state)
        raise LoopCancelled(f"loop {turn.state.loop_id} cancelled while {tool} was {doing}")
    return result


def _worktree(state: LoopState) -> Path:
    """The loop's worktree, re-added from its branch if someone removed the folder."""
    path = Path(state.worktree)
    if not (path / ".git").exists():
        worktree.create_worktree(Path(state.project), path, state.branch)
    return path


def _attempt_dir(env: LoopEnv, state: LoopState, story_id: str, number: int) -> Path:
    folder = attempt_dir(env.loops_dir, state.loop_id, story_id, number)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def _failure(result: AgentResult, timeout_s: float) -> str:
    if result.timed_out:
        return f"timed out after {timeout_s:g} s"
    return f"exited with code {result.returncode}"


def _run(
    env: LoopEnv, state: LoopState, tool: str, prompt: str, cwd: Path, output: Path
) -> AgentResult:
    result = run_agent(
        tool,
        prompt,
        cwd,
        output,
        timeout_s=env.timeout_s,
        argv=agent_command(tool, env.agent),
        env=env.env,
        pid_file=pid_path(env.loops_dir, state.loop_id),
        cancel_file=cancel_path(env.loops_dir, state.loop_id),
        grace_s=env.grace_s,
    )
    return result


def _run_checks(env: LoopEnv, state: LoopState, prd: Prd, wt: Path, folder: Path) -> list:
    """The PRD's checks in the worktree, output under `folder`/checks, stopped by a cancel."""
    return run_checks(prd.checks, wt, folder / "checks", timeout_s=env.check_timeout_s,
                      env=env.check_env(), cancel_file=cancel_path(env.loops_dir, state.loop_id))


def _open_attempt(
    env: LoopEnv, state: LoopState, prd: Prd, story: Story, number: int
) -> dict[str, Any]:
    """Record attempt `number` of `story` with its tools; or stop when iterations ran out."""
    record = state.story(story.id)
    if state.out_of_iterations():
        state.stop_reason = f"max_iterations ({state.max_iterations}) reached"
        for other in state.stories.values():
            if other.status == "pending" and other.attempts:
                other.status = "failed"
                other.note = f"unfinished: {state.stop_reason}"
        state.current_story = state.current_attempt = None
        state.next_step = "complete"
        save_loop(env.loops_dir, state)
        return _reply(state, reason=state.stop_reason)
    tool, reason = choose_tool(story, number, state.tools, load_playbook(env.loops_dir))
    reviewer, reviewer_reason = choose_reviewer(tool, state.tools)
    head = worktree.head_sha(_worktree(state))
    if record.base_sha is None:
        record.base_sha = head
    record.attempts.append(
        Attempt(
            number=number,
            base_sha=head,
            tool=tool,
            tool_reason=reason,
            reviewer_tool=reviewer,
            reviewer_reason=reviewer_reason,
        )
    )
    state.current_story, state.current_attempt = story.id, number
    state.iterations_used += 1
    state.next_step = "implement"
    save_loop(env.loops_dir, state)
    return _reply(state, tool=tool, reason=reason, kind=record.kind, reviewer=reviewer)


def _previous_feedback(record: StoryRecord, number: int) -> str | None:
    if number <= 1:
        return None
    previous = record.attempt(number - 1)
    if previous.feedback_path and Path(previous.feedback_path).is_file():
        return Path(previous.feedback_path).read_text(encoding="utf-8", errors="replace")
    return None


def _under(path: str, folder: str) -> bool:
    folder = PurePosixPath(folder).as_posix().strip("/")
    if folder in ("", "."):  # tests live at the project root: nothing to tell apart
        return True
    return path == folder or path.startswith(folder + "/")


def _mark_prd_passed(state: LoopState, story_id: str) -> None:
    prd = load_prd(Path(state.prd))
    for story in prd.stories:
        if story.id == story_id:
            story.passes = True
    save_prd(Path(state.prd), prd)


# ---- roles --------------------------------------------------------------------------------


def start(
    env: LoopEnv, request: LoopStartData | Mapping[str, Any], *, loop_id: str | None = None
) -> dict[str, Any]:
    """Validate the PRD, create the loop record, its worktree and progress.txt.

    Returns `{"loop_id", "next": "plan", "worktree", "branch", "stories": {id: kind}}`.
    Raises PermanentError (exact field) for a bad PRD, a project that is not a git repository
    with a commit, or an override key that names nothing.
    """
    try:
        data = (
            request if isinstance(request, LoopStartData) else LoopStartData.model_validate(request)
        )
    except ValidationError as err:
        raise PermanentError(f"invalid loop request: {describe_validation_error(err)}") from None
    prd = load_prd(data.prd)
    project = worktree.repo_root(data.project)
    check_overrides(data.tools, prd)
    kinds = {story.id: story_kind(story) for story in prd.stories}
    state = None
    if loop_id is not None:
        try:
            state = load_loop(env.loops_dir, loop_id)
        except PermanentError:
            state = None
        if state is not None and state.status != "queued":
            return _reply(state, repeated=True, worktree=state.worktree, branch=state.branch)
        if state is not None and state.started_at is not None:
            return _restart(env, state, kinds)
    if state is None:
        state = new_loop(
            env.loops_dir,
            project=project,
            prd_source=data.prd,
            prd=prd,
            story_kinds=kinds,
            max_attempts=data.max_attempts,
            max_iterations=data.max_iterations,
            tools=dict(data.tools),
            push=data.push,
            loop_id=loop_id,
        )
    path = Path(state.worktree)
    state.base_sha = worktree.create_worktree(project, path, state.branch)
    progress.ensure_progress(path, prd.title, state.loop_id, state.branch)
    worktree.commit_paths(path, [PROGRESS], f"chore: [{state.loop_id}] start — progress.txt")
    state.head_sha = worktree.head_sha(path)
    state.status = "running"
    state.started_at = utc_now()
    state.next_step = "plan"
    save_loop(env.loops_dir, state)
    return _reply(state, worktree=state.worktree, branch=state.branch, stories=kinds)


def _restart(env: LoopEnv, state: LoopState, kinds: dict[str, str]) -> dict[str, Any]:
    """A resumed loop (`igs loop resume`, see loop/resume.py) runs again: same worktree and
    branch, the step its resume chose next. progress.txt notes the resume once, between
    stories only: an interrupted attempt goes on from its own base commit."""
    path = _worktree(state)
    last = state.resumes[-1] if state.resumes else None
    if last is not None and state.next_step == "plan":
        lines = [f"was {last.was}" + (f": {last.reason}" if last.reason else ""),
                 f"next: {last.story or '-'} ({last.next_step})"]
        if progress.append_entry(path, f"{state.loop_id}/resume-{last.number}",
                                 f"resume {last.number}", lines):
            worktree.commit_paths(path, [PROGRESS],
                                  f"chore: [{state.loop_id}] resume-{last.number} — progress.txt")
    state.head_sha = worktree.head_sha(path)
    state.status = "running"
    save_loop(env.loops_dir, state)
    return _reply(state, worktree=state.worktree, branch=state.branch, stories=kinds,
                  resumed=state.resume)


def plan(env: LoopEnv, loop_id: str) -> dict[str, Any]:
    """Pick the next story (lowest priority number first) and the tool for its attempt.

    Returns `{"next": "implement", "story", "attempt", "tool", "reason", "kind", "reviewer"}`,
    or `{"next": "complete", "reason"}` when no story is open or iterations ran out.
    """
    state = _enter(env, loop_id, "plan")
    if state.next_step != "plan":
        return _reply(state, repeated=True)
    prd = load_prd(Path(state.prd))
    story = next_story(prd, state)
    if story is None:
        state.current_story = state.current_attempt = None
        state.next_step = "complete"
        save_loop(env.loops_dir, state)
        return _reply(state, reason="no open stories")
    return _open_attempt(env, state, prd, story, len(state.story(story.id).attempts) + 1)


def implement(env: LoopEnv, loop_id: str) -> dict[str, Any]:
    """Run the implementor agent on the current story and commit its work.

    The commit is `feat: [loopId] [storyId] attempt-N — title` unless the tool committed
    everything itself. Idempotent: when a commit with that marker (or the tool's own commits)
    already follows the attempt's base, the agent is not run again.
    Returns `{"next": "review", "ok": True, "commits": [...], "tool", "reused": bool}`; when the
    agent times out or exits non-zero its partial work is dropped and the result is
    `{"next": "judge", "ok": False, "error": "..."}` (the judge fails the attempt).
    Raises LoopCancelled when the cancel flag appears while the agent runs.
    """
    state, turn = _begin(env, loop_id, "implement")
    if turn is None:
        return _reply(state, repeated=True)
    record, attempt, prd, story, wt = turn.record, turn.attempt, turn.prd, turn.story, turn.wt
    if attempt.base_sha is None:
        attempt.base_sha = worktree.head_sha(wt)
        save_loop(env.loops_dir, state)
    base = attempt.base_sha
    mark = marker("feat", state.loop_id, story.id, attempt.number)
    reused = False
    if worktree.find_commit(wt, mark, since=base):
        reused = True
        attempt.notes.append("found this attempt's commit from an earlier run: agent not rerun")
    elif worktree.head_sha(wt) != base and worktree.is_clean(wt):
        reused = True
        attempt.notes.append("found the tool's own commits from an earlier run: agent not rerun")
    else:
        if worktree.head_sha(wt) != base or not worktree.is_clean(wt):
            # a run killed while its agent worked (or stray check output): start clean, so
            # half-done work never lands in this attempt's commit
            worktree.reset_hard(wt, base)
            attempt.notes.append(
                f"worktree was not clean at the attempt's start (an interrupted run?): "
                f"reset to {base[:8]}"
            )
        prompt = implementor_prompt(
            loop_id=state.loop_id,
            prd=prd,
            story=story,
            attempt=attempt.number,
            branch=state.branch,
            feedback=_previous_feedback(record, attempt.number),
            patterns=progress.read_patterns(wt),
            guidance=read_guidance(wt),
        )
        result = _agent_turn(env, turn, "implement", attempt.tool, prompt, "implementing")
        if not result.ok:
            attempt.error = f"implementor {attempt.tool} {_failure(result, env.timeout_s)}"
            worktree.reset_hard(wt, base)  # drop half-done work: the next attempt starts clean
            attempt.stage = "judge"
            state.next_step = "judge"
            save_loop(env.loops_dir, state)
            return _reply(state, ok=False, tool=attempt.tool, error=attempt.error)
        worktree.commit_all(
            wt, commit_message("feat", state.loop_id, story, attempt.number, story.title)
        )
    attempt.commits = worktree.commits_between(wt, base)
    if not attempt.commits:
        attempt.notes.append("no commit: the implementor changed nothing")
    attempt.stage = "review"
    state.head_sha = worktree.head_sha(wt)
    state.next_step = "review"
    save_loop(env.loops_dir, state)
    return _reply(state, ok=True, tool=attempt.tool, commits=attempt.commits, reused=reused)


def review(env: LoopEnv, loop_id: str) -> dict[str, Any]:
    """Run a SEPARATE reviewer agent that writes tests from the acceptance criteria only,
    commit them (`test: [loopId] [storyId] attempt-N — tests from acceptance criteria`), then
    run the PRD's checks. Reviewer changes outside the PRD's tests folder are discarded.

    Returns `{"next": "judge", "test_commit", "checks": {name: "passed"|"failed"|"not
    configured"}, "reviewer"}`. A reviewer that times out or fails raises RuntimeError
    (transient: the step is retried; its partial work is dropped first).
    """
    state, turn = _begin(env, loop_id, "review")
    if turn is None:
        return _reply(state, repeated=True)
    attempt, prd, story, wt, folder = turn.attempt, turn.prd, turn.story, turn.wt, turn.folder
    reviewer = attempt.reviewer_tool or choose_reviewer(attempt.tool, state.tools)[0]
    mark = marker("test", state.loop_id, story.id, attempt.number)
    found = worktree.find_commit(wt, mark, since=attempt.base_sha)
    if found:
        attempt.test_commit = found
    else:
        if attempt.review_base is None:
            attempt.review_base = worktree.head_sha(wt)
            save_loop(env.loops_dir, state)
        else:
            worktree.reset_hard(wt, attempt.review_base)  # leftovers of an interrupted run
        prompt = reviewer_prompt(story=story, tests_dir=prd.tests_dir, test_command=prd.checks.test)
        result = _agent_turn(env, turn, "review", reviewer, prompt, "writing tests")
        if not result.ok:
            worktree.reset_hard(wt, attempt.review_base)
            save_loop(env.loops_dir, state)
            raise RuntimeError(
                f"reviewer {reviewer} {_failure(result, env.timeout_s)} "
                f"(output: {result.output_path})"
            )
        if worktree.head_sha(wt) != attempt.review_base:
            worktree.unstage_commits_since(wt, attempt.review_base)
        outside = [
            change for change in worktree.changed_paths(wt) if not _under(change[1], prd.tests_dir)
        ]
        if outside:
            dropped = worktree.discard_paths(wt, outside)
            attempt.notes.append(
                f"reviewer changes outside {prd.tests_dir}/ discarded: {', '.join(dropped[:20])}"
            )
        attempt.test_commit = worktree.commit_all(
            wt,
            commit_message(
                "test", state.loop_id, story, attempt.number, "tests from acceptance criteria"
            ),
        )
        if attempt.test_commit is None:
            attempt.notes.append("no test commit: the reviewer changed no test files")
    started = time.monotonic()
    results = _run_checks(env, state, prd, wt, folder)
    if is_cancelled(env.loops_dir, state.loop_id):
        _mark_cancelled(env, state)
        raise LoopCancelled(f"loop {loop_id} cancelled while the checks ran")
    attempt.checks = results
    attempt.durations["checks"] = round(time.monotonic() - started, 3)
    attempt.stage = "judge"
    state.head_sha = worktree.head_sha(wt)
    state.next_step = "judge"
    save_loop(env.loops_dir, state)
    return _reply(
        state,
        reviewer=reviewer,
        test_commit=attempt.test_commit,
        checks={c.name: c.status for c in results},
    )


def _progress_lines(attempt: Attempt) -> list[str]:
    lines = [
        f"tool: {attempt.tool} ({attempt.tool_reason}); reviewer: {attempt.reviewer_tool}",
        "commits: "
        + (", ".join(c[:8] for c in attempt.commits) or "none")
        + (f"; tests {attempt.test_commit[:8]}" if attempt.test_commit else ""),
    ]
    if attempt.error:
        lines.append(f"error: {attempt.error}")
    lines += [f"check {c.line()}" for c in attempt.checks]
    lines.append(f"time: {attempt.total_duration_s:.1f} s")
    return lines


def judge(env: LoopEnv, loop_id: str) -> dict[str, Any]:
    """PASS iff every configured check passed (and the implementor ran fine).

    PASS: the story is marked passed (loop record, the loop's PRD copy, progress.txt) ->
    `{"next": "plan", "verdict": "PASS"}`. FAIL: the feedback is written to a file for the next
    attempt -> `{"next": "implement", "verdict": "FAIL", "attempt": n + 1, "feedback_path"}`;
    after `max_attempts` the story is skipped: its commits move to the branch
    `agent-loop/{loopId}--skipped-{storyId}` and the loop branch returns to where the story
    began -> `{"next": "plan", "verdict": "FAIL", "skipped": True, "parked_branch"}`.
    """
    started = time.monotonic()
    state, turn = _begin(env, loop_id, "judge")
    if turn is None:
        return _reply(state, repeated=True)
    record, attempt, prd, story = turn.record, turn.attempt, turn.prd, turn.story
    wt, folder = turn.wt, turn.folder
    if attempt.error:
        output = attempt.implement.output_path if attempt.implement else "-"
        tail = attempt.implement.tail[-3000:] if attempt.implement else ""
        result, feedback = (
            "FAIL",
            (
                f"The implementor run failed: {attempt.error}. Its changes were discarded.\n"
                f"Full output: {output}\n\n```\n{tail}\n```\n"
            ),
        )
    else:
        result, feedback = verdict(attempt.checks)
    attempt.feedback_path = str(atomic_write_text(folder / "feedback.md", feedback + "\n"))
    attempt.verdict = result
    attempt.stage = "done"
    attempt.finished_at = attempt.finished_at or utc_now()
    attempt.durations["judge"] = round(time.monotonic() - started, 3)
    key = f"{state.loop_id}/{story.id}/attempt-{attempt.number}"
    lines = _progress_lines(attempt)
    last_try = attempt.number - record.attempts_before >= state.max_attempts
    if result == "PASS":
        lines.append(f"outcome: story PASSED after {attempt.number} attempt(s)")
    elif last_try:
        lines.append(f"outcome: story SKIPPED after {attempt.number} attempt(s)")
    else:
        lines.append(f"outcome: retry (feedback: {attempt.feedback_path})")
    progress.append_entry(
        wt, key, f"{story.id} {story.title}: attempt {attempt.number} {result}", lines
    )
    subject = f"chore: [{state.loop_id}] [{story.id}] attempt-{attempt.number} — progress: {result}"
    worktree.commit_paths(wt, [PROGRESS], subject)
    common = {
        "verdict": result,
        "judged_story": story.id,
        "judged_attempt": attempt.number,
        "feedback_path": attempt.feedback_path,
    }
    if result == "PASS":
        record.status = "passed"
        record.passed_by = "judge"
        _mark_prd_passed(state, story.id)
        return _story_done(env, state, wt, **common, story=story.id, attempt=attempt.number)
    if not last_try:
        save_loop(env.loops_dir, state)
        return {**_open_attempt(env, state, prd, story, attempt.number + 1), **common}
    _park(state, record, wt)
    record.status = "skipped"
    record.note = (
        f"skipped after {attempt.number} failed attempt(s); work kept on branch "
        f"{record.parked_branch}"
    )
    return _story_done(env, state, wt, **common, story=story.id, attempt=attempt.number,
                       skipped=True, parked_branch=record.parked_branch)


def _story_done(env: LoopEnv, state: LoopState, wt: Path, **reply: Any) -> dict[str, Any]:
    """The judged story is finished (passed or skipped): the planner picks the next one."""
    state.current_story = state.current_attempt = None
    state.head_sha = worktree.head_sha(wt)
    state.next_step = "plan"
    save_loop(env.loops_dir, state)
    return _reply(state, **reply)


def _park(state: LoopState, record: StoryRecord, wt: Path) -> None:
    """Keep a skipped story's commits on a side branch; return the loop branch to where the
    story began, so its failing code and tests do not fail every later story's checks.
    progress.txt keeps its entries. Safe to repeat."""
    side = f"{state.branch}--skipped-{record.id}" + (f"-resume-{state.resume}" if state.resume else "")
    record.parked_branch = side
    if not worktree.branch_exists(wt, side):
        worktree.create_branch(wt, side, "HEAD")
    if (
        record.base_sha
        and worktree.head_sha(wt) == worktree.git(wt, "rev-parse", side).stdout.decode().strip()
    ):
        worktree.reset_hard(wt, record.base_sha)
    kept = worktree.git(wt, "show", f"{side}:{PROGRESS}", check=False)
    if kept.returncode == 0:
        atomic_write_text(wt / PROGRESS, kept.stdout.decode("utf-8", "replace"))
    worktree.commit_paths(
        wt,
        [PROGRESS],
        f"chore: [{state.loop_id}] [{record.id}] skipped — work kept on {side}",
    )


def _recheck(env: LoopEnv, state: LoopState, prd: Prd, record: StoryRecord, wt: Path) -> None:
    """Once per skipped story: re-apply its work on the final branch and run the checks again
    (a later story may have supplied what it lacked). PASS: keep it and mark it passed."""
    record.rechecked = True
    before = worktree.head_sha(wt)
    if not record.parked_branch or not record.base_sha:
        return
    if not worktree.apply_diff(wt, record.base_sha, record.parked_branch, exclude=[PROGRESS]):
        record.note += "; recheck: its work no longer applies (or is empty)"
        return
    folder = loop_dir(env.loops_dir, state.loop_id) / "stories" / record.id / "recheck"
    results = _run_checks(env, state, prd, wt, folder)
    if is_cancelled(env.loops_dir, state.loop_id):
        worktree.reset_hard(wt, before)
        _mark_cancelled(env, state)
        raise LoopCancelled(f"loop {state.loop_id} cancelled while rechecking {record.id}")
    result, _ = verdict(results)
    lines = [f"check {c.line()}" for c in results]
    if result == "PASS":
        story = prd.story(record.id)
        worktree.commit_all(
            wt,
            f"feat: [{state.loop_id}] [{record.id}] recheck — {story.title} (passed at the final recheck)",
        )
        record.status = "passed"
        record.passed_by = "recheck"
        record.note += "; passed at the final recheck"
        _mark_prd_passed(state, record.id)
        lines.append("outcome: story PASSED at the final recheck")
    else:
        worktree.reset_hard(wt, before)
        record.note += "; still failing at the final recheck"
        lines.append("outcome: still failing at the final recheck: stays skipped")
    progress.append_entry(
        wt,
        f"{state.loop_id}/{record.id}/recheck",
        f"{record.id} {record.title}: recheck {result}",
        lines,
    )
    worktree.commit_paths(
        wt, [PROGRESS], f"chore: [{state.loop_id}] [{record.id}] recheck — progress: {result}"
    )


def complete(env: LoopEnv, loop_id: str) -> dict[str, Any]:
    """Recheck each skipped story once, write the summary note `Loops/{loopId}.md`, push the
    branch when asked, leave the branch (and worktree) in place.

    Returns `{"next": "retro", "status": "complete", "passed", "skipped", "failed", "pending"
    (story id lists), "summary_note", "branch", "head", "pushed"}`. A failed push raises
    (transient) after the summary is written; retrying does not recheck again.
    """
    state = _enter(env, loop_id, "complete")
    if state.next_step != "complete":
        return _reply(state, repeated=True)
    prd = load_prd(Path(state.prd))
    wt = _worktree(state)
    for record in state.stories.values():
        if record.status == "skipped" and not record.rechecked:
            _recheck(env, state, prd, record, wt)
            save_loop(env.loops_dir, state)
    state.head_sha = worktree.head_sha(wt)
    state.status = "complete"
    state.finished_at = state.finished_at or utc_now()
    state.summary_note = str(write_summary(env.vault_dir, state, prd.title))
    save_loop(env.loops_dir, state)
    if state.push and not state.pushed:
        worktree.push(wt, state.remote, state.branch)
        state.pushed = True
        state.summary_note = str(write_summary(env.vault_dir, state, prd.title))
    state.next_step = "retro"
    save_loop(env.loops_dir, state)
    by_status: dict[str, list[str]] = {"passed": [], "skipped": [], "failed": [], "pending": []}
    for record in state.stories.values():
        by_status[record.status].append(record.id)
    return _reply(
        state,
        **by_status,
        summary_note=state.summary_note,
        branch=state.branch,
        head=state.head_sha,
        pushed=state.pushed,
        stop_reason=state.stop_reason,
    )


def retro(env: LoopEnv, loop_id: str) -> dict[str, Any]:
    """Merge this loop's figures into `loops_dir/playbook.json` (once) and write the retro
    note `Loops/{loopId}-retro.md`. Returns `{"next": "done", "retro_note", "playbook",
    "figures": {tool: {kind: {...}}}}`."""
    state = _enter(env, loop_id, "retro")
    if state.status != "complete":
        raise PermanentError(f"loop {loop_id} is {state.status}: run complete before retro")
    prd = load_prd(Path(state.prd))
    playbook = merge_loop(env.loops_dir, state)
    state.retro_note = str(write_retro(env.vault_dir, state, prd.title, playbook))
    state.next_step = "done"
    save_loop(env.loops_dir, state)
    figures = {
        tool: {kind: f.model_dump() for kind, f in kinds.items()}
        for tool, kinds in loop_stats(state).items()
    }
    return _reply(
        state,
        retro_note=state.retro_note,
        playbook=str(playbook_path(env.loops_dir)),
        figures=figures,
    )


# ---- control ------------------------------------------------------------------------------


def cancel(env: LoopEnv, loop_id: str, reason: str = "cancelled by user") -> dict[str, Any]:
    """Set the cancel flag, stop a running agent (via its pid file), mark the loop cancelled.

    Returns `{"loop_id", "status", "killed": bool}`.
    """
    request_cancel(env.loops_dir, loop_id, reason)
    killed = kill_from_pid_file(pid_path(env.loops_dir, loop_id), env.grace_s)
    state = _mark_cancelled(env, load_loop(env.loops_dir, loop_id))
    return {"loop_id": loop_id, "status": state.status, "killed": killed}


def fail(env: LoopEnv, loop_id: str, error: str) -> dict[str, Any]:
    """Mark the loop failed (for the Dagster layer when a role raised PermanentError); stop a
    leftover agent. Returns `{"loop_id", "status", "error"}`."""
    kill_from_pid_file(pid_path(env.loops_dir, loop_id), env.grace_s)

    def mark(state: LoopState) -> bool:
        if state.status in TERMINAL:
            return False
        state.status = "failed"
        state.error = error
        state.next_step = None
        state.finished_at = utc_now()
        return True

    state = update_loop(env.loops_dir, loop_id, mark)
    return {"loop_id": loop_id, "status": state.status, "error": state.error}


ROLES = {
    "plan": plan,
    "implement": implement,
    "review": review,
    "judge": judge,
    "complete": complete,
    "retro": retro,
}


def steps(env: LoopEnv, loop_id: str, max_steps: int = 10_000) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run the role the loop record names next, again and again, until the loop is done (no
    Dagster: the plain driver the tests and the benchmark use); yields (role, its reply)."""
    for _ in range(max_steps):
        role = load_loop(env.loops_dir, loop_id).next_step or ""
        if role not in ROLES:
            return
        yield role, ROLES[role](env, loop_id)


def run_to_end(env: LoopEnv, loop_id: str, max_steps: int = 10_000) -> list[dict[str, Any]]:
    """`steps` to the end: every reply in order, with its role under "role"."""
    return [{"role": role, **reply} for role, reply in steps(env, loop_id, max_steps)]


__all__ = [
    "LoopCancelled",
    "LoopEnv",
    "cancel",
    "complete",
    "fail",
    "implement",
    "judge",
    "plan",
    "retro",
    "review",
    "run_to_end",
    "start",
    "steps",
]
