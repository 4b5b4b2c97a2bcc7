"""Prompts for the two agents of an attempt.

Implementor: the story, its acceptance criteria, the judge's feedback on the previous attempt,
the codebase patterns from progress.txt, the PRD overview and the project's guidance files
(AGENTS.md, CLAUDE.md, .cursorrules), packed into at most PROMPT_MAX_BYTES. When it does not
fit, the least important parts are cut first (guidance files, then the PRD overview, codebase
patterns, story description, feedback) and the prompt says what was cut.

Reviewer: ONLY the story's title and acceptance criteria, where the tests live and the test
command. Never the implementation, the diff or any file's contents: the reviewer writes its
tests from the criteria alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from igs_dagster.loop.prd import Prd, Story

PROMPT_MAX_BYTES = 32 * 1024
FEEDBACK_MAX_BYTES = 8 * 1024
GUIDANCE_FILES = ("AGENTS.md", "CLAUDE.md", ".cursorrules")
_GUIDANCE_READ_MAX = 256 * 1024
_DROP_BELOW = 200  # a section cut below this many bytes is left out altogether


@dataclass
class Section:
    title: str
    body: str
    rank: int  # 0 = never cut; higher = cut earlier

    def render(self) -> str:
        return (
            f"## {self.title}\n\n{self.body.rstrip()}\n"
            if self.title
            else self.body.rstrip() + "\n"
        )


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _head(text: str, limit: int) -> str:
    return text.encode("utf-8")[: max(0, limit)].decode("utf-8", "ignore")


def truncate(text: str, limit: int, marker: str = "\n[... truncated ...]") -> str:
    """`text` cut to at most `limit` bytes (UTF-8), with a marker when cut."""
    if _bytes(text) <= limit:
        return text
    return _head(text, limit - _bytes(marker)) + marker


def _assemble(sections: list[Section], notes: list[str], max_bytes: int) -> str:
    parts = [s.render() for s in sections if s.body.strip() or s.rank == 0]
    if notes:
        parts.append(
            f"## Prompt size\n\nTo fit the {max_bytes // 1024} KB prompt limit, parts were "
            f"shortened (least important first): {'; '.join(notes)}. Read the full files in "
            "the working folder if needed.\n"
        )
    return "\n".join(parts)


def pack(sections: list[Section], max_bytes: int = PROMPT_MAX_BYTES) -> str:
    """Join sections; while too big, cut the highest-rank section first (rank 0 never)."""
    notes: list[str] = []
    slack = 160  # room for the note each cut adds
    for section in sorted((s for s in sections if s.rank > 0), key=lambda s: -s.rank):
        over = _bytes(_assemble(sections, notes, max_bytes)) - max_bytes
        if over <= 0:
            break
        before = _bytes(section.body)
        keep = before - over - slack
        if keep < _DROP_BELOW:
            section.body = ""
            notes.append(f"{section.title} left out ({before} bytes)")
        else:
            section.body = truncate(section.body, keep)
            notes.append(f"{section.title} cut from {before} to {_bytes(section.body)} bytes")
    text = _assemble(sections, notes, max_bytes)
    return truncate(text, max_bytes, "\n[... prompt truncated to the size limit ...]\n")


def tests_slug(story_id: str) -> str:
    """`US-001` -> `us_001`: a story id as it appears in test file names."""
    return re.sub(r"[^a-z0-9_]", "_", story_id.lower())


def commit_message(kind: str, loop_id: str, story: Story, attempt: int, text: str) -> str:
    """`feat: [loopId] [storyId] attempt-N — title`; `marker(...)` is its searchable prefix."""
    return f"{marker(kind, loop_id, story.id, attempt)} — {text}"


def marker(kind: str, loop_id: str, story_id: str, attempt: int) -> str:
    return f"{kind}: [{loop_id}] [{story_id}] attempt-{attempt}"


def _criteria(story: Story) -> str:
    return "\n".join(f"{i}. {c}" for i, c in enumerate(story.acceptance_criteria, 1))


def read_guidance(worktree: Path) -> dict[str, str]:
    """The project's agent guidance files that exist in the worktree, name -> text."""
    found: dict[str, str] = {}
    for name in GUIDANCE_FILES:
        path = Path(worktree) / name
        if path.is_file():
            with open(path, "rb") as handle:
                found[name] = handle.read(_GUIDANCE_READ_MAX).decode("utf-8", "replace")
    return found


def implementor_prompt(
    *,
    loop_id: str,
    prd: Prd,
    story: Story,
    attempt: int,
    branch: str,
    feedback: str | None = None,
    patterns: str = "",
    guidance: dict[str, str] | None = None,
    max_bytes: int = PROMPT_MAX_BYTES,
) -> str:
    checks = "\n".join(f"- {name}: `{cmd}`" for name, cmd in prd.checks.configured().items())
    header = (
        f"# Implement story {story.id}: {story.title}\n\n"
        f"You are the implementor in an autonomous coding loop ({loop_id}, attempt {attempt}). "
        "Your working folder is a git worktree of the project on branch "
        f"`{branch}`.\n\n"
        "Rules:\n"
        "- Implement ONLY this story, completely, so that every acceptance criterion holds.\n"
        "- Keep changes focused; follow the codebase patterns and project guidance below.\n"
        f"- A separate reviewer will write tests from the acceptance criteria (in "
        f"`{prd.tests_dir}/`), then the loop runs these checks; make them pass:\n{checks}\n"
        "- Do not switch branches, rewrite history or push. Do not commit: the loop commits "
        "your changes.\n"
        "- If you learn a reusable pattern of this codebase, add one line to the "
        "'## Codebase patterns' section of progress.txt.\n"
    )
    sections = [
        Section("", header, 0),
        Section("Acceptance criteria", _criteria(story), 0),
    ]
    if story.description:
        sections.append(Section("Story description", story.description, 3))
    if feedback:
        sections.append(
            Section(
                f"Judge feedback on attempt {attempt - 1} (it FAILED: fix this first)",
                truncate(feedback, FEEDBACK_MAX_BYTES),
                2,
            )
        )
    if patterns.strip():
        sections.append(Section("Codebase patterns (from progress.txt)", patterns, 4))
    overview = f"{prd.title}\n\n{prd.description}".strip()
    sections.append(Section("Project PRD overview", overview, 5))
    for rank, (name, text) in enumerate(sorted((guidance or {}).items()), start=6):
        if text.strip():
            sections.append(Section(f"Project guidance: {name}", text, rank))
    return pack(sections, max_bytes)


def reviewer_prompt(*, story: Story, tests_dir: str, test_command: str | None) -> str:
    """The reviewer's prompt: the criteria and where tests go. Nothing from the code."""
    slug = tests_slug(story.id)
    run = (
        f"The tests are run from the project root with `{test_command}`."
        if test_command
        else "The project has no test command configured; write the tests anyway."
    )
    return (
        f"# Write tests for story {story.id}: {story.title}\n\n"
        "You are the reviewer in an autonomous coding loop. Write automated tests that check "
        "the acceptance criteria below. Write them from the criteria text ONLY: do not read, "
        "copy or adapt to the implementation; use only the names and behaviour the criteria "
        "state, so that a wrong implementation fails.\n\n"
        f"## Acceptance criteria\n\n{_criteria(story)}\n\n"
        "## Where the tests go\n\n"
        f"- Put the tests in `{tests_dir}/`, in new file(s) whose names contain `{slug}` "
        f"(for example `{tests_dir}/test_{slug}.py`).\n"
        f"- Change nothing outside `{tests_dir}/`: such changes are discarded. Do not fix the "
        "implementation.\n"
        "- Cover every criterion with at least one test.\n"
        f"- {run}\n"
        "- Do not commit: the loop commits your tests.\n"
    )
