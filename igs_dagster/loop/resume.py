"""`igs loop resume ID`: carry a failed, incomplete or cancelled loop on from its first story
that has not passed, in its own worktree and branch, with the settings it was started with.

Stories that passed keep their status and commits. A skipped or failed story is open again
with a fresh `max_attempts` (its earlier attempts stay in the record; `attempts_before`); a
story interrupted mid-attempt (a cancel) goes on with that attempt from the step it was in
(the roles clean up what the interrupted step left). `max_iterations` counts from the resume.
Each resume has a number n: its runs have the run keys `loop:<id>:resume-<n>:<k>`, so they
never collide with the keys of the loop's earlier runs.
"""

from __future__ import annotations

from pathlib import Path

from igs_dagster.core.errors import PermanentError
from igs_dagster.loop import worktree
from igs_dagster.loop.outcome import last_failure, outcome
from igs_dagster.loop.planner import next_story
from igs_dagster.loop.prd import load_prd
from igs_dagster.loop.state import LoopState, Resume


def refusal(state: LoopState) -> str | None:
    """Why `state` cannot be resumed (one line), or None."""
    lid = state.loop_id
    if state.status in ("queued", "running"):
        return (f"loop {lid} is {state.status}: only a failed, incomplete or cancelled loop can "
                f"be resumed (igs loop cancel {lid} stops it)")
    if state.status == "complete" and state.next_step not in (None, "done"):
        return f"loop {lid} is still finishing ({state.next_step}): wait for it"
    shown = outcome(state)
    if shown == "complete":
        return f"loop {lid} is complete: every story passed, nothing to resume"
    project = Path(state.project)
    if not project.is_dir():
        return f"loop {lid}: its project {project} is gone: nothing to resume"
    if state.started_at is None:
        return None  # never started (failed at its first step): resuming starts it
    has_branch = worktree.branch_exists(project, state.branch)
    if not (Path(state.worktree) / ".git").exists() or not has_branch:
        kept = (f"its branch {state.branch} is kept (merge or look at it)" if has_branch
                else "its branch is gone too")
        return (f"loop {lid}: its worktree was removed (igs loop clean); {kept}; "
                "start a new loop to go on")
    return None


def _next(state: LoopState) -> tuple[str, str | None]:
    """(next step, story) a resumed loop goes on with."""
    record = state.stories.get(state.current_story) if state.current_story else None
    if record is not None and record.status == "pending" and state.current_attempt:
        stage = record.attempt(state.current_attempt).stage
        if stage != "done":
            return stage, record.id
    state.current_story = state.current_attempt = None
    try:
        story = next_story(load_prd(Path(state.prd)), state)
    except PermanentError:
        story = None  # the planner says what is wrong
    return "plan", story.id if story else None


def prepare(state: LoopState, number: int) -> LoopState:
    """Make `state` (refused by nothing) a queued loop that goes on where it stopped, as
    resume `number`. Changes the record in memory only: the caller saves it."""
    was = outcome(state)
    reason = state.error or state.stop_reason
    if reason is None:
        reason = next((r for s in state.stories.values() if (r := last_failure(s))), None)
    for record in state.stories.values():
        if record.status in ("skipped", "failed"):
            record.note = f"resume {number}: open again (was {record.status}: {record.note})"
            record.status = "pending"
            record.attempts_before = len(record.attempts)
            record.base_sha = None  # its next attempt begins from the branch as it is now
            record.parked_branch = None  # the earlier work stays on its side branch
            record.rechecked = False
    step, story = _next(state)
    state.resumes.append(Resume(number=number, was=was, reason=reason, next_step=step,
                                story=story))
    state.status = "queued"
    state.next_step = step
    state.iterations_base = state.iterations_used
    state.stop_reason = state.error = state.finished_at = None
    state.pushed = False
    return state
