"""The loop's summary note in the vault: `Loops/{loop_id}.md`, written when the loop completes."""

from __future__ import annotations

from pathlib import Path

import yaml

from igs_dagster.core.fsutil import atomic_write_text, inside, safe_name
from igs_dagster.core.inert import inert
from igs_dagster.loop.state import Attempt, LoopState, StoryRecord

LOOPS_FOLDER = "Loops"


def note_path(vault_dir: Path, name: str) -> Path:
    return inside(Path(vault_dir), LOOPS_FOLDER, safe_name(name, "note name") + ".md")


def frontmatter(meta: dict) -> str:
    """The YAML block; a free-text `title` (the PRD's) made inert for a frontmatter value."""
    if isinstance(meta.get("title"), str):
        meta = {**meta, "title": inert(meta["title"], "frontmatter")}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def short(sha: str | None) -> str:
    return sha[:8] if sha else "-"


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def story_commits(record: StoryRecord) -> list[str]:
    shas: list[str] = []
    for attempt in record.attempts:
        shas.extend(attempt.commits)
        if attempt.test_commit:
            shas.append(attempt.test_commit)
    return shas


def story_time(record: StoryRecord) -> float:
    return sum(a.total_duration_s for a in record.attempts)


def attempt_line(attempt: Attempt) -> str:
    roles = ", ".join(f"{k} {seconds(v)}" for k, v in attempt.durations.items()) or "no timings"
    commits = [f"{short(c)} (feat)" for c in attempt.commits]
    if attempt.test_commit:
        commits.append(f"{short(attempt.test_commit)} (test)")
    verdict = attempt.verdict or "not judged"
    extra = f"; error: {inert(attempt.error, 'item')}" if attempt.error else ""
    return (
        f"attempt {attempt.number}: {attempt.tool} ({attempt.tool_reason}) -> **{verdict}**; "
        f"reviewer {attempt.reviewer_tool or '-'}; {roles}; "
        f"commits {', '.join(commits) or 'none'}{extra}"
    )


def counts(state: LoopState) -> dict[str, int]:
    result = {"passed": 0, "skipped": 0, "failed": 0, "pending": 0}
    for record in state.stories.values():
        result[record.status] += 1
    return result


def render_summary(state: LoopState, prd_title: str) -> str:
    tally = counts(state)
    attempts = sum(len(r.attempts) for r in state.stories.values())
    meta = {
        "type": "agent-loop",
        "loop_id": state.loop_id,
        "title": prd_title,
        "status": state.status,
        "project": state.project,
        "branch": state.branch,
        "prd": state.prd_source,
        "stories": len(state.stories),
        "passed": tally["passed"],
        "skipped": tally["skipped"],
        "failed": tally["failed"],
        "pending": tally["pending"],
        "attempts": attempts,
        "iterations_used": state.iterations_used,
        "pushed": state.pushed,
        "started": state.started_at,
        "finished": state.finished_at,
        "tags": ["agent-loop"],
    }
    lines = [
        frontmatter(meta),
        f"# Coding loop {state.loop_id}: {inert(prd_title, 'heading')}\n",
        f"Project `{state.project}`, branch `{state.branch}` (worktree `{state.worktree}`), "
        f"head `{short(state.head_sha)}`. Status **{state.status}**"
        + (f" ({state.stop_reason})" if state.stop_reason else "")
        + f". {tally['passed']} passed, {tally['skipped']} skipped, {tally['failed']} failed, "
        f"{tally['pending']} not started; {attempts} attempts.\n",
        "| Story | Title | Kind | Status | Attempts | Tools | Time | Commits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for record in state.stories.values():
        tools = ", ".join(dict.fromkeys(a.tool for a in record.attempts)) or "-"
        lines.append(
            f"| {record.id} | {inert(record.title, 'cell')} | {record.kind} | {record.status} | "
            f"{len(record.attempts)} | {tools} | {seconds(story_time(record))} | "
            f"{', '.join(short(c) for c in story_commits(record)) or '-'} |"
        )
    lines.append("\n## Stories\n")
    for record in state.stories.values():
        lines.append(f"### {record.id}: {inert(record.title, 'heading')} ({record.status})\n")
        if record.note:
            lines.append(f"{inert(record.note, 'paragraph')}\n")
        for attempt in record.attempts:
            lines.append(f"- {attempt_line(attempt)}")
            for check in attempt.checks:
                lines.append(f"  - {inert(check.line(), 'item')}")
            if attempt.feedback_path and attempt.verdict == "FAIL":
                lines.append(f"  - judge feedback: `{attempt.feedback_path}`")
        if record.parked_branch:
            lines.append(f"- the skipped work is kept on branch `{record.parked_branch}`")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_summary(vault_dir: Path, state: LoopState, prd_title: str) -> Path:
    return atomic_write_text(note_path(vault_dir, state.loop_id), render_summary(state, prd_title))
