"""A story the judge gave up on: its work parked on a side branch (`park`), so its failing
code and tests do not fail every later story's checks, and rechecked once when the loop
completes (`recheck`), since a later story may have supplied what it lacked."""

from __future__ import annotations

from pathlib import Path

from igs_dagster.core.fsutil import atomic_write_text
from igs_dagster.loop import progress, worktree
from igs_dagster.loop.control import stop_if_cancelled
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.judge import verdict
from igs_dagster.loop.prd import Prd, mark_passed
from igs_dagster.loop.state import LoopState, StoryRecord, loop_dir
from igs_dagster.loop.turn import run_checks

PROGRESS = progress.PROGRESS_FILE


def park(state: LoopState, record: StoryRecord, wt: Path) -> None:
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


def recheck(env: LoopEnv, state: LoopState, prd: Prd, record: StoryRecord, wt: Path) -> None:
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
    results = run_checks(env, state, prd, wt, folder)
    stop_if_cancelled(env, state, f"cancelled while rechecking {record.id}",
                      undo=lambda: worktree.reset_hard(wt, before))
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
        mark_passed(state.prd, record.id)
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
