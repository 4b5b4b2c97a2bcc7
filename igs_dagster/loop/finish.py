"""The end of a loop, the last two roles: `complete` (each skipped story rechecked once, the
summary note, the push) and `retro` (this loop's figures into the playbook, the retro note)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from igs_dagster.core.errors import PermanentError
from igs_dagster.loop import worktree
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.playbook import loop_stats, merge_loop, playbook_path
from igs_dagster.loop.prd import load_prd
from igs_dagster.loop.recheck import recheck
from igs_dagster.loop.retro import write_retro
from igs_dagster.loop.state import LoopState, save_loop, utc_now
from igs_dagster.loop.summary import write_summary
from igs_dagster.loop.turn import enter, reply, role, worktree_of


@role("complete")
def complete(env: LoopEnv, state: LoopState) -> dict[str, Any]:
    """Recheck each skipped story once, write the summary note `Loops/{loopId}.md`, push the
    branch when asked, leave the branch (and worktree) in place.

    Returns `{"next": "retro", "status": "complete", "passed", "skipped", "failed", "pending"
    (story id lists), "summary_note", "branch", "head", "pushed"}`. A failed push raises
    (transient) after the summary is written; retrying does not recheck again.
    """
    prd = load_prd(Path(state.prd))
    wt = worktree_of(state)
    for record in state.stories.values():
        if record.status == "skipped" and not record.rechecked:
            recheck(env, state, prd, record, wt)
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
    return reply(
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
    state = enter(env, loop_id, "retro")
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
    return reply(
        state,
        retro_note=state.retro_note,
        playbook=str(playbook_path(env.loops_dir)),
        figures=figures,
    )
