"""The retro: a post-mortem note `Loops/{loop_id}-retro.md`, and the playbook update.

What passed, failed or was skipped, the attempts, tools and durations, which tool did best per
story kind in this loop, and what the planner will pick next time given the merged playbook.
"""

from __future__ import annotations

from pathlib import Path

from igs_dagster.core.fsutil import atomic_write_text
from igs_dagster.core.inert import inert
from igs_dagster.loop.planner import DEFAULT_TOOL, playbook_pick
from igs_dagster.loop.playbook import Playbook, ToolKindStats, loop_stats
from igs_dagster.loop.state import LoopState
from igs_dagster.loop.summary import counts, frontmatter, note_path, seconds, story_time


def _figures_table(stats: dict[str, dict[str, ToolKindStats]]) -> list[str]:
    rows = [
        "| Kind | Tool | Attempts | Passes | Pass rate | Mean attempts to pass | Mean implement time |",
        "|---|---|---|---|---|---|---|",
    ]
    for tool, kinds in sorted(stats.items()):
        for kind, f in sorted(kinds.items()):
            mean_pass = f"{f.mean_attempts_to_pass:g}" if f.mean_attempts_to_pass else "-"
            mean_time = seconds(f.mean_duration_s) if f.mean_duration_s is not None else "-"
            rows.append(
                f"| {kind} | {tool} | {f.attempts} | {f.passes} | {f.pass_rate:.0%} | "
                f"{mean_pass} | {mean_time} |"
            )
    return rows if len(rows) > 2 else ["_No judged attempts._"]


def best_per_kind(
    stats: dict[str, dict[str, ToolKindStats]],
) -> dict[str, tuple[str, ToolKindStats]]:
    """kind -> (tool, figures) with the best pass rate, then fewer attempts to pass, then speed."""
    best: dict[str, tuple[str, ToolKindStats]] = {}
    for tool, kinds in stats.items():
        for kind, f in kinds.items():
            key = (f.pass_rate, -(f.mean_attempts_to_pass or 99), -(f.mean_duration_s or 0))
            if kind not in best:
                best[kind] = (tool, f)
                continue
            _, g = best[kind]
            if key > (g.pass_rate, -(g.mean_attempts_to_pass or 99), -(g.mean_duration_s or 0)):
                best[kind] = (tool, f)
    return best


def render_retro(state: LoopState, prd_title: str, playbook: Playbook) -> str:
    tally = counts(state)
    stats = loop_stats(state)
    attempts = sum(len(r.attempts) for r in state.stories.values())
    total = sum(story_time(r) for r in state.stories.values())
    meta = {
        "type": "agent-loop-retro",
        "loop_id": state.loop_id,
        "title": prd_title,
        "status": state.status,
        "passed": tally["passed"],
        "skipped": tally["skipped"],
        "failed": tally["failed"],
        "attempts": attempts,
        "tags": ["agent-loop", "retro"],
    }
    lines = [
        frontmatter(meta),
        f"# Retro: coding loop {state.loop_id}\n",
        f"[[{state.loop_id}]] - {inert(prd_title, 'paragraph')}. {tally['passed']} of {len(state.stories)} stories "
        f"passed, {tally['skipped']} skipped, {tally['failed']} failed, {tally['pending']} not "
        f"started; {attempts} attempts ({state.iterations_used}/{state.max_iterations} "
        f"iterations), {seconds(total)} of agent and check time"
        + (f"; stopped: {state.stop_reason}" if state.stop_reason else "")
        + ".\n",
        "## What happened\n",
    ]
    for record in state.stories.values():
        tools = " -> ".join(f"{a.tool}:{a.verdict or '?'}" for a in record.attempts) or "not tried"
        how = " (passed at the final recheck)" if record.passed_by == "recheck" else ""
        lines.append(
            f"- **{record.id}** {inert(record.title, 'item')} [{record.kind}]: {record.status}{how}; "
            f"{len(record.attempts)} attempt(s): {tools}; {seconds(story_time(record))}"
        )
        last = record.attempts[-1] if record.attempts else None
        if record.status != "passed" and last is not None and last.error:
            lines.append(f"  - last error: {inert(last.error, 'item')}")
        if record.status != "passed" and last is not None:
            failing = [c.line() for c in last.checks if c.configured and not c.passed]
            if failing:
                lines.append(f"  - last failing checks: {inert('; '.join(failing), 'item')}")
    lines += ["", "## Tools per story kind (this loop)\n", *_figures_table(stats), ""]
    best = best_per_kind(stats)
    if best:
        lines.append("Best tool per kind in this loop:")
        for kind, (tool, f) in sorted(best.items()):
            lines.append(f"- {kind}: {tool} ({f.passes}/{f.attempts} passed)")
        lines.append("")
    lines += ["## Playbook after this loop (all loops)\n", *_figures_table(playbook.stats), ""]
    lines.append("## Next time\n")
    for kind, default in DEFAULT_TOOL.items():
        pick = playbook_pick(kind, default, playbook)
        if pick:
            lines.append(f"- {kind}: the planner will use {pick[0]} - {pick[1]}")
        else:
            lines.append(f"- {kind}: the planner keeps the default {default}")
    return "\n".join(lines).rstrip() + "\n"


def write_retro(vault_dir: Path, state: LoopState, prd_title: str, playbook: Playbook) -> Path:
    return atomic_write_text(
        note_path(vault_dir, f"{state.loop_id}-retro"), render_retro(state, prd_title, playbook)
    )
