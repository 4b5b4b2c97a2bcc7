"""Planner: story order, story kind from its text, tool choice (overrides, playbook, ladder)."""

from __future__ import annotations

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.loop.planner import (
    check_overrides,
    choose_reviewer,
    choose_tool,
    classify,
    next_story,
    story_kind,
)
from igs_dagster.loop.playbook import Playbook, ToolKindStats
from igs_dagster.loop.prd import Prd, Story
from igs_dagster.loop.state import LoopState, StoryRecord


def mk(
    title: str,
    description: str = "",
    criteria: tuple[str, ...] = ("it works",),
    sid: str = "S1",
    priority: int = 1,
) -> Story:
    return Story(
        id=sid,
        title=title,
        description=description,
        acceptance_criteria=list(criteria),
        priority=priority,
    )


KINDS = [
    ("Add a migration for the orders table", "", ("the column total is an integer",), "code"),
    ("Change the return type of parse()", "", ("parse returns a typed dict",), "code"),
    ("Slugify titles", "", ("`textutil.slugify('A b')` returns `'a-b'`",), "code"),
    ("Add a dark mode toggle button", "", ("the settings page shows the toggle",), "ui"),
    ("Show the export dialog", "", ("verify in the browser that clicking Export opens it",), "ui"),
    ("Research rate limits of the GitHub API", "", ("list sources for each limit",), "research"),
    (
        "Find out which PDF libraries are maintained",
        "Investigate and compare options.",
        ("a table of options",),
        "research",
    ),
    ("Refactor the parser module into a package", "", ("behaviour unchanged",), "refactor"),
    (
        "Restructure storage",
        "Consolidate the three cache layers; multi-file change across modules.",
        ("all tests pass",),
        "refactor",
    ),
    ("Misc", "", ("something happens",), "code"),
]


@pytest.mark.parametrize(
    ("title", "description", "criteria", "kind"), KINDS, ids=[k[0] for k in KINDS]
)
def test_story_kind(title: str, description: str, criteria: tuple[str, ...], kind: str) -> None:
    assert story_kind(mk(title, description, criteria)) == kind


def test_classify_names_its_signals() -> None:
    assert classify(mk("Refactor the parser module")) == ("refactor", ["refactor"])
    assert classify(mk("Misc")) == ("code", [])


def book(**figures: tuple[int, int]) -> Playbook:
    """book(codex_code=(attempts, passes), ...)"""
    playbook = Playbook()
    for key, (attempts, passes) in figures.items():
        tool, kind = key.split("_")
        playbook.stats.setdefault(tool, {})[kind] = ToolKindStats(
            attempts=attempts, passes=passes, stories_passed=passes, attempts_to_pass_total=passes
        ).derive()
    return playbook


CODE, UI, REFACTOR, RESEARCH = (
    mk("Add a migration"),
    mk("Add a button"),
    mk("Refactor the cache"),
    mk("Research caching"),
)
TOOLS = [
    # story, attempt, overrides, playbook, tool, reason starts with
    (CODE, 1, {}, None, "codex", "default for 'code' stories"),
    (UI, 1, {}, None, "pi", "default for 'ui' stories"),
    (RESEARCH, 1, {}, None, "pi", "default for 'research' stories"),
    (REFACTOR, 1, {}, None, "claude", "default for 'refactor' stories"),
    (CODE, 2, {}, None, "claude", "retry ladder: attempt 2 switches codex -> claude"),
    (CODE, 3, {}, None, "codex", "retry ladder: attempt 3 returns to codex"),
    (UI, 2, {}, None, "claude", "retry ladder: attempt 2 switches pi -> claude"),
    (UI, 3, {}, None, "pi", "retry ladder: attempt 3 returns to pi"),
    (REFACTOR, 2, {}, None, "codex", "retry ladder: attempt 2 switches claude -> codex"),
    (REFACTOR, 3, {}, None, "claude", "retry ladder: attempt 3 returns to claude"),
    # overrides: story id > kind > "implementor"/"*"; they hold on every attempt
    (
        CODE,
        1,
        {"S1": "pi", "code": "claude", "*": "codex"},
        None,
        "pi",
        "user override tools['S1']=pi",
    ),
    (
        CODE,
        2,
        {"code": "claude", "*": "codex"},
        None,
        "claude",
        "user override tools['code']=claude",
    ),
    (UI, 3, {"implementor": "codex"}, None, "codex", "user override tools['implementor']=codex"),
    (UI, 1, {"*": "claude"}, None, "claude", "user override tools['*']=claude"),
    (CODE, 1, {"reviewer": "pi"}, None, "codex", "default for 'code'"),
    # playbook: the default is replaced only with >= 2 attempts each and a clear margin
    (
        CODE,
        1,
        {},
        book(codex_code=(3, 0), claude_code=(2, 2)),
        "claude",
        "playbook: codex passed 0/3 'code' attempts (0%), claude 2/2 (100%)",
    ),
    (
        CODE,
        2,
        {},
        book(codex_code=(3, 0), claude_code=(2, 2)),
        "codex",
        "retry ladder: attempt 2 switches claude -> codex",
    ),
    (
        CODE,
        1,
        {},
        book(codex_code=(1, 0), claude_code=(5, 5)),
        "codex",
        "default",
    ),  # too little data
    (CODE, 1, {}, book(codex_code=(4, 0), claude_code=(1, 1)), "codex", "default"),
    (
        CODE,
        1,
        {},
        book(codex_code=(4, 3), claude_code=(5, 4)),
        "codex",
        "default",
    ),  # 75% vs 80%: not clear
    (
        CODE,
        1,
        {},
        book(codex_code=(4, 2), claude_code=(4, 4), pi_code=(2, 2)),
        "claude",
        "playbook: codex passed 2/4",
    ),
    (
        UI,
        1,
        {},
        book(pi_ui=(2, 0), claude_ui=(2, 2), codex_code=(9, 0)),
        "claude",
        "playbook: pi passed 0/2 'ui'",
    ),
    (
        UI,
        1,
        {},
        book(codex_code=(9, 0), claude_code=(9, 9)),
        "pi",
        "default",
    ),  # other kinds don't count
    (
        CODE,
        1,
        {"code": "codex"},
        book(codex_code=(3, 0), claude_code=(2, 2)),
        "codex",
        "user override",
    ),
]


@pytest.mark.parametrize(("story", "attempt", "overrides", "playbook", "tool", "reason"), TOOLS)
def test_choose_tool(
    story: Story, attempt: int, overrides: dict, playbook: Playbook | None, tool: str, reason: str
) -> None:
    chosen, why = choose_tool(story, attempt, overrides, playbook)
    assert (chosen, why[: len(reason)]) == (tool, reason)


def test_choose_reviewer_differs_from_the_implementor_unless_overridden() -> None:
    assert choose_reviewer("codex")[0] == "claude"
    assert choose_reviewer("claude")[0] == "codex"
    assert choose_reviewer("pi")[0] == "claude"
    assert choose_reviewer("codex", {"reviewer": "pi"}) == (
        "pi",
        "user override tools['reviewer']=pi",
    )


def _prd(*stories: Story) -> Prd:
    return Prd(title="t", stories=list(stories), checks={"test": "pytest"})


def _state(prd: Prd, **status: str) -> LoopState:
    return LoopState(
        loop_id="loop-x",
        project="/p",
        worktree="/w",
        branch="b",
        prd_source="/s",
        prd="/d",
        stories={
            s.id: StoryRecord(
                id=s.id,
                title=s.title,
                kind="code",
                priority=s.priority,
                status=status.get(s.id, "pending"),
            )
            for s in prd.stories
        },
    )


def test_next_story_by_priority_skipping_done_stories() -> None:
    prd = _prd(
        mk("c", sid="C", priority=3),
        mk("a", sid="A", priority=1),
        mk("b", sid="B", priority=2),
        mk("a2", sid="A2", priority=1),
    )
    assert next_story(prd, _state(prd)).id == "A"  # ties: PRD order
    assert next_story(prd, _state(prd, A="passed")).id == "A2"
    assert next_story(prd, _state(prd, A="passed", A2="skipped")).id == "B"
    prd.stories[2].passes = True  # B already passes in the PRD
    assert next_story(prd, _state(prd, A="passed", A2="skipped")).id == "C"
    assert next_story(prd, _state(prd, A="passed", A2="skipped", C="failed")) is None


def test_check_overrides_refuses_unknown_keys_and_tools() -> None:
    prd = _prd(mk("a", sid="S1"))
    check_overrides(
        {"S1": "pi", "code": "codex", "*": "claude", "reviewer": "pi", "implementor": "codex"}, prd
    )
    with pytest.raises(PermanentError, match="tools: unknown key 'S2'"):
        check_overrides({"S2": "pi"}, prd)
    with pytest.raises(PermanentError, match=r"tools\['S1'\]: unknown tool 'gpt'"):
        check_overrides({"S1": "gpt"}, prd)
