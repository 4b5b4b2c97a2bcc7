"""One plain function per role of the coding loop; the Dagster ops call these.

Every role takes a `LoopEnv` (folders, agent settings, timeouts) and a loop id, reads and
writes the loop record, passes the guard of loop/turn.py first (the cancel flag raises
`LoopCancelled`; a role the record does not name next answers `"repeated": True`), and returns
a small dict whose `"next"` names the role to run next::

    start     -> {"next": "plan", ...}
    plan      -> {"next": "implement", "story", "attempt", "tool", ...} | {"next": "complete"}
    implement -> {"next": "review", ...} | {"next": "judge", "ok": False, "error"}  (agent failed)
    review    -> {"next": "judge", "checks": {...}, ...}
    judge     -> {"next": "plan", "verdict": "PASS"} | {"next": "implement", "verdict": "FAIL",
                 "attempt": n + 1, ...} | {"next": "plan", "verdict": "FAIL", "skipped": True}
                 | {"next": "complete", ...} (iterations used up)
    complete  -> {"next": "retro", "status": "complete", "passed": [...], ...}
    retro     -> {"next": "done", "retro_note", "playbook"}

A retried implementor finds its own commit by its message marker and does not run the agent
or commit again. Here: start and the roles of a story (plan, implement, review, judge); the
last two roles are loop/finish.py, a skipped story's side branch and final recheck
loop/recheck.py, stopping a loop loop/control.py, running the roles in order without Dagster
loop/driver.py. `ROLES` names them all for the Dagster ops.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import LoopStartData, describe_validation_error
from igs_dagster.core.fsutil import atomic_write_text
from igs_dagster.loop import progress, worktree
from igs_dagster.loop.control import stop_if_cancelled
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.finish import complete, retro
from igs_dagster.loop.judge import verdict
from igs_dagster.loop.planner import (
    check_overrides,
    choose_reviewer,
    choose_tool,
    next_story,
    story_kind,
)
from igs_dagster.loop.playbook import load_playbook
from igs_dagster.loop.prd import Prd, Story, load_prd, mark_passed
from igs_dagster.loop.prompt import (
    commit_message,
    implementor_prompt,
    marker,
    read_guidance,
    reviewer_prompt,
)
from igs_dagster.loop.recheck import park
from igs_dagster.loop.state import (
    Attempt,
    LoopState,
    StoryRecord,
    load_loop,
    new_loop,
    save_loop,
    utc_now,
)
from igs_dagster.loop.turn import (
    Turn,
    agent_turn,
    failure,
    reply,
    role,
    run_checks,
    worktree_of,
)

PROGRESS = progress.PROGRESS_FILE


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
        return reply(state, reason=state.stop_reason)
    tool, reason = choose_tool(story, number, state.tools, load_playbook(env.loops_dir))
    reviewer, reviewer_reason = choose_reviewer(tool, state.tools)
    head = worktree.head_sha(worktree_of(state))
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
    return reply(state, tool=tool, reason=reason, kind=record.kind, reviewer=reviewer)


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
            return reply(state, repeated=True, worktree=state.worktree, branch=state.branch)
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
    return reply(state, worktree=state.worktree, branch=state.branch, stories=kinds)


def _restart(env: LoopEnv, state: LoopState, kinds: dict[str, str]) -> dict[str, Any]:
    """A resumed loop (`igs loop resume`, see loop/resume.py) runs again: same worktree and
    branch, the step its resume chose next. progress.txt notes the resume once, between
    stories only: an interrupted attempt goes on from its own base commit."""
    path = worktree_of(state)
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
    return reply(state, worktree=state.worktree, branch=state.branch, stories=kinds,
                  resumed=state.resume)


@role("plan")
def plan(env: LoopEnv, state: LoopState) -> dict[str, Any]:
    """Pick the next story (lowest priority number first) and the tool for its attempt.

    Returns `{"next": "implement", "story", "attempt", "tool", "reason", "kind", "reviewer"}`,
    or `{"next": "complete", "reason"}` when no story is open or iterations ran out.
    """
    prd = load_prd(Path(state.prd))
    story = next_story(prd, state)
    if story is None:
        state.current_story = state.current_attempt = None
        state.next_step = "complete"
        save_loop(env.loops_dir, state)
        return reply(state, reason="no open stories")
    return _open_attempt(env, state, prd, story, len(state.story(story.id).attempts) + 1)


@role("implement", turn=True)
def implement(env: LoopEnv, turn: Turn) -> dict[str, Any]:
    """Run the implementor agent on the current story and commit its work.

    The commit is `feat: [loopId] [storyId] attempt-N — title` unless the tool committed
    everything itself. Idempotent: when a commit with that marker (or the tool's own commits)
    already follows the attempt's base, the agent is not run again.
    Returns `{"next": "review", "ok": True, "commits": [...], "tool", "reused": bool}`; when the
    agent times out or exits non-zero its partial work is dropped and the result is
    `{"next": "judge", "ok": False, "error": "..."}` (the judge fails the attempt).
    Raises LoopCancelled when the cancel flag appears while the agent runs.
    """
    state, record, attempt = turn.state, turn.record, turn.attempt
    prd, story, wt = turn.prd, turn.story, turn.wt
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
        result = agent_turn(env, turn, "implement", attempt.tool, prompt, "implementing")
        if not result.ok:
            attempt.error = f"implementor {attempt.tool} {failure(result, env.timeout_s)}"
            worktree.reset_hard(wt, base)  # drop half-done work: the next attempt starts clean
            attempt.stage = "judge"
            state.next_step = "judge"
            save_loop(env.loops_dir, state)
            return reply(state, ok=False, tool=attempt.tool, error=attempt.error)
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
    return reply(state, ok=True, tool=attempt.tool, commits=attempt.commits, reused=reused)


@role("review", turn=True)
def review(env: LoopEnv, turn: Turn) -> dict[str, Any]:
    """Run a SEPARATE reviewer agent that writes tests from the acceptance criteria only,
    commit them (`test: [loopId] [storyId] attempt-N — tests from acceptance criteria`), then
    run the PRD's checks. Reviewer changes outside the PRD's tests folder are discarded.

    Returns `{"next": "judge", "test_commit", "checks": {name: "passed"|"failed"|"not
    configured"}, "reviewer"}`. A reviewer that times out or fails raises RuntimeError
    (transient: the step is retried; its partial work is dropped first).
    """
    state, attempt, prd, story = turn.state, turn.attempt, turn.prd, turn.story
    wt, folder = turn.wt, turn.folder
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
        result = agent_turn(env, turn, "review", reviewer, prompt, "writing tests")
        if not result.ok:
            worktree.reset_hard(wt, attempt.review_base)
            save_loop(env.loops_dir, state)
            raise RuntimeError(
                f"reviewer {reviewer} {failure(result, env.timeout_s)} "
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
    results = run_checks(env, state, prd, wt, folder)
    stop_if_cancelled(env, state, "cancelled while the checks ran")
    attempt.checks = results
    attempt.durations["checks"] = round(time.monotonic() - started, 3)
    attempt.stage = "judge"
    state.head_sha = worktree.head_sha(wt)
    state.next_step = "judge"
    save_loop(env.loops_dir, state)
    return reply(
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


@role("judge", turn=True)
def judge(env: LoopEnv, turn: Turn) -> dict[str, Any]:
    """PASS iff every configured check passed (and the implementor ran fine).

    PASS: the story is marked passed (loop record, the loop's PRD copy, progress.txt) ->
    `{"next": "plan", "verdict": "PASS"}`. FAIL: the feedback is written to a file for the next
    attempt -> `{"next": "implement", "verdict": "FAIL", "attempt": n + 1, "feedback_path"}`;
    after `max_attempts` the story is skipped: its commits move to the branch
    `agent-loop/{loopId}--skipped-{storyId}` and the loop branch returns to where the story
    began -> `{"next": "plan", "verdict": "FAIL", "skipped": True, "parked_branch"}`.
    """
    started = time.monotonic()
    state, record, attempt, prd, story = turn.state, turn.record, turn.attempt, turn.prd, turn.story
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
        mark_passed(state.prd, story.id)
        return _story_done(env, state, wt, **common, story=story.id, attempt=attempt.number)
    if not last_try:
        save_loop(env.loops_dir, state)
        return {**_open_attempt(env, state, prd, story, attempt.number + 1), **common}
    park(state, record, wt)
    record.status = "skipped"
    record.note = (
        f"skipped after {attempt.number} failed attempt(s); work kept on branch "
        f"{record.parked_branch}"
    )
    return _story_done(env, state, wt, **common, story=story.id, attempt=attempt.number,
                       skipped=True, parked_branch=record.parked_branch)


def _story_done(env: LoopEnv, state: LoopState, wt: Path, **answer: Any) -> dict[str, Any]:
    """The judged story is finished (passed or skipped): the planner picks the next one."""
    state.current_story = state.current_attempt = None
    state.head_sha = worktree.head_sha(wt)
    state.next_step = "plan"
    save_loop(env.loops_dir, state)
    return reply(state, **answer)


ROLES = {
    "plan": plan,
    "implement": implement,
    "review": review,
    "judge": judge,
    "complete": complete,
    "retro": retro,
}
