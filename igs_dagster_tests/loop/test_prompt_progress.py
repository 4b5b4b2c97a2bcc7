"""Prompts (size-bounded implementor prompt; reviewer prompt without code) and progress.txt."""

from __future__ import annotations

from pathlib import Path

from igs_dagster.loop import progress
from igs_dagster.loop.prd import Prd, Story
from igs_dagster.loop.prompt import (
    commit_message,
    implementor_prompt,
    marker,
    read_guidance,
    reviewer_prompt,
)

STORY = Story(
    id="US-7",
    title="Slugify titles",
    description="Titles become URL slugs.",
    acceptance_criteria=["`textutil.slugify('A b')` returns `'a-b'`", "empty input gives ''"],
    priority=1,
)
PRD = Prd(
    title="Demo",
    description="Helpers.",
    stories=[STORY],
    checks={"test": "python -m pytest -q", "lint": "ruff check ."},
)


def _second_attempt_prompt(**parts) -> str:
    """The implementor's prompt for attempt 2 of STORY in loop-1 (`parts`: the rest)."""
    return implementor_prompt(loop_id="loop-1", prd=PRD, story=STORY, attempt=2, **parts)


def test_implementor_prompt_has_story_criteria_feedback_patterns_guidance(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("Use tabs never.\n")
    (tmp_path / ".cursorrules").write_text("Prefer pure functions.\n")
    prompt = _second_attempt_prompt(
        branch="agent-loop/loop-1",
        feedback="test failed: assert 'A b' == 'a-b'",
        patterns="- helpers live in textutil.py",
        guidance=read_guidance(tmp_path),
    )
    assert prompt.startswith("# Implement story US-7: Slugify titles\n")
    for part in (
        "1. `textutil.slugify('A b')` returns `'a-b'`",
        "2. empty input gives ''",
        "Titles become URL slugs.",
        "## Judge feedback on attempt 1 (it FAILED: fix this first)",
        "assert 'A b' == 'a-b'",
        "- helpers live in textutil.py",
        "## Project guidance: AGENTS.md",
        "Use tabs never.",
        "## Project guidance: .cursorrules",
        "- test: `python -m pytest -q`",
        "- lint: `ruff check .`",
        "agent-loop/loop-1",
    ):
        assert part in prompt
    assert "Prompt size" not in prompt


def test_implementor_prompt_is_bounded_cutting_the_least_important_first() -> None:
    prompt = _second_attempt_prompt(
        branch="b",
        feedback="FEEDBACK " * 300,
        patterns="PATTERN " * 2000,
        guidance={"AGENTS.md": "AGENTS " * 6000, "CLAUDE.md": "CLAUDE " * 6000},
        max_bytes=16 * 1024,
    )
    assert len(prompt.encode()) <= 16 * 1024
    assert "1. `textutil.slugify('A b')` returns `'a-b'`" in prompt  # never cut
    assert prompt.count("FEEDBACK") == 300  # more important than what was cut
    assert "## Prompt size" in prompt and "Project guidance: CLAUDE.md left out" in prompt
    assert "CLAUDE CLAUDE" not in prompt
    assert "Read the full files in the working folder" in prompt


def test_reviewer_prompt_has_only_the_criteria(tmp_path: Path) -> None:
    # A worktree full of code: nothing of it may reach the reviewer.
    (tmp_path / "textutil.py").write_text(
        "def slugify(text):\n    return SECRET_IMPLEMENTATION_42(text)\n"
    )
    (tmp_path / "AGENTS.md").write_text("GUIDANCE_TOKEN_17\n")
    prompt = reviewer_prompt(story=STORY, tests_dir="tests", test_command="python -m pytest -q")
    assert "SECRET_IMPLEMENTATION_42" not in prompt and "def slugify" not in prompt
    assert "GUIDANCE_TOKEN_17" not in prompt and "Titles become URL slugs." not in prompt
    assert "# Write tests for story US-7: Slugify titles" in prompt
    assert "1. `textutil.slugify('A b')` returns `'a-b'`" in prompt
    assert "Put the tests in `tests/`" in prompt and "names contain `us_7`" in prompt
    assert "`python -m pytest -q`" in prompt


def test_commit_markers() -> None:
    assert marker("feat", "loop-1", "US-7", 2) == "feat: [loop-1] [US-7] attempt-2"
    assert (
        commit_message("feat", "loop-1", STORY, 2, STORY.title)
        == "feat: [loop-1] [US-7] attempt-2 — Slugify titles"
    )


def test_progress_is_appended_once_per_key(tmp_path: Path) -> None:
    path = progress.ensure_progress(tmp_path, "Demo", "loop-1", "agent-loop/loop-1")
    assert progress.read_patterns(tmp_path) == ""
    assert progress.append_entry(
        tmp_path, "loop-1/S1/attempt-1", "S1 title: attempt 1 PASS", ["tool: codex"]
    )
    assert not progress.append_entry(
        tmp_path, "loop-1/S1/attempt-1", "S1 title: attempt 1 PASS", ["tool: codex"]
    )
    assert progress.append_entry(tmp_path, "loop-1/S1/attempt-2", "S1 title: attempt 2 PASS", ["x"])
    text = path.read_text()
    assert text.count("### S1 title: attempt 1 PASS") == 1 and "- tool: codex" in text
    # An agent adds a pattern: the implementor reads it back.
    path.write_text(
        text.replace("## Codebase patterns\n\n", "## Codebase patterns\n\n- use textutil\n")
    )
    assert progress.read_patterns(tmp_path) == "- use textutil"
    progress.ensure_progress(tmp_path, "Demo", "loop-1", "b")  # existing file: unchanged
    assert progress.read_patterns(tmp_path) == "- use textutil"


def test_progress_adds_its_sections_to_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "progress.txt").write_text("Notes the project already had.\n")
    progress.ensure_progress(tmp_path, "Demo", "loop-1", "b")
    text = (tmp_path / "progress.txt").read_text()
    assert text.startswith("Notes the project already had.\n")
    assert "## Codebase patterns" in text and text.rstrip().endswith("## Log")
