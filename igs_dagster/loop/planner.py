"""The planner: which story next, what kind of work it is, and which agent tool should do it.

Defaults per story kind: "code" (pure code, migrations, type changes) -> codex; "ui" (UI work,
browser verification) -> pi; "research" (web research) -> pi; "refactor" (complex multi-file
refactor) -> claude. The user's override wins; otherwise the playbook may replace a kind's
default by a tool that clearly did better on that kind (>= 2 judged attempts each, pass rate
at least 25 points higher). Later attempts climb a ladder: the first tool on odd attempts,
its alternate on even ones (codex -> claude -> codex, pi -> claude -> pi, claude -> codex ->
claude).

Override keys (`LoopStartData.tools`): a story id, a kind, `implementor` or `*` (every
story), `reviewer` (the test-writing agent). A story id beats a kind beats `implementor`/`*`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from igs_dagster.core.errors import PermanentError
from igs_dagster.loop.playbook import Playbook
from igs_dagster.loop.prd import Prd, Story
from igs_dagster.loop.state import LoopState

TOOLS = ("codex", "claude", "pi")
KINDS = ("code", "ui", "research", "refactor")
DEFAULT_TOOL = {"code": "codex", "ui": "pi", "research": "pi", "refactor": "claude"}
ALTERNATE = {"codex": "claude", "pi": "claude", "claude": "codex"}
ROLE_KEYS = ("implementor", "*", "reviewer")
MIN_PLAYBOOK_ATTEMPTS = 2
CLEARLY_BETTER = 0.25  # pass-rate margin before the playbook overrides a default

_SIGNALS: dict[str, tuple[str, ...]] = {
    "refactor": (
        "refactor",
        "refactoring",
        "restructure",
        "reorganize",
        "reorganise",
        "multi-file",
        "across the codebase",
        "across modules",
        "across all modules",
        "decouple",
        "consolidate",
        "rename across",
        "move all",
        "split the module",
        "architecture",
    ),
    "ui": (
        "ui",
        "user interface",
        "frontend",
        "front-end",
        "browser",
        "button",
        "screen",
        "css",
        "html",
        "layout",
        "modal",
        "dialog",
        "click",
        "clicks",
        "dashboard",
        "visual",
        "styling",
        "responsive",
        "playwright",
        "screenshot",
        "web page",
        "page",
        "dark mode",
    ),
    "research": (
        "research",
        "investigate",
        "investigation",
        "web search",
        "search the web",
        "look up",
        "find out",
        "survey",
        "literature",
        "best practices",
        "citations",
        "sources",
        "compare options",
        "state of the art",
    ),
    "code": (
        "migration",
        "migrations",
        "schema",
        "type",
        "types",
        "typed",
        "function",
        "functions",
        "endpoint",
        "api",
        "column",
        "database",
        "sql",
        "parser",
        "cli",
        "module",
        "class",
        "returns",
        "raises",
        "algorithm",
        "bug",
        "fix",
    ),
}
_PATTERNS = {
    kind: [(word, re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.I)) for word in words]
    for kind, words in _SIGNALS.items()
}


def classify(story: Story) -> tuple[str, list[str]]:
    """(kind, matched signal words). Title words count double; no signal at all means "code".

    A specific kind (refactor, ui, research) wins when it scores at least half of "code"'s.
    """
    body = " ".join([story.description, *story.acceptance_criteria])
    scores: dict[str, int] = {}
    found: dict[str, list[str]] = {}
    for kind, patterns in _PATTERNS.items():
        for word, pattern in patterns:
            score = 2 * len(pattern.findall(story.title)) + len(pattern.findall(body))
            if score:
                scores[kind] = scores.get(kind, 0) + score
                found.setdefault(kind, []).append(word)
    # Code words are common in every story: they count half against a specific kind.
    code = scores.get("code", 0) / 2
    order = ("refactor", "ui", "research")
    best = max(order, key=lambda k: (scores.get(k, 0), -order.index(k)))
    if scores.get(best, 0) and scores[best] >= code:
        return best, found[best]
    return "code", found.get("code", [])


def story_kind(story: Story) -> str:
    return classify(story)[0]


def next_story(prd: Prd, state: LoopState) -> Story | None:
    """The open story with the lowest priority number (PRD order breaks ties), or None.

    Passed and skipped stories (and those the PRD already marks `passes`) are done.
    """
    open_stories = [
        (story.priority, index, story)
        for index, story in enumerate(prd.stories)
        if not story.passes
        and (record := state.stories.get(story.id)) is not None
        and record.status == "pending"
    ]
    return min(open_stories, key=lambda item: item[:2])[2] if open_stories else None


def _override(story: Story, kind: str, overrides: Mapping[str, str]) -> tuple[str, str] | None:
    for key in (story.id, kind, "implementor", "*"):
        if key in overrides:
            return overrides[key], f"user override tools[{key!r}]={overrides[key]}"
    return None


def playbook_pick(kind: str, default: str, playbook: Playbook | None) -> tuple[str, str] | None:
    if playbook is None:
        return None
    base = playbook.get(default, kind)
    if base.attempts < MIN_PLAYBOOK_ATTEMPTS:
        return None
    # best pass rate, then fewer attempts to pass, then more evidence, then TOOLS order
    candidates = [
        (
            figures.pass_rate,
            -(figures.mean_attempts_to_pass or 99.0),
            figures.attempts,
            -TOOLS.index(tool),
            tool,
            figures,
        )
        for tool in TOOLS
        if tool != default
        and (figures := playbook.get(tool, kind)).attempts >= MIN_PLAYBOOK_ATTEMPTS
    ]
    if not candidates:
        return None
    rate, *_, tool, figures = max(candidates, key=lambda c: c[:4])
    if rate - base.pass_rate < CLEARLY_BETTER:
        return None
    return tool, (
        f"playbook: {default} passed {base.passes}/{base.attempts} {kind!r} attempts "
        f"({base.pass_rate:.0%}), {tool} {figures.passes}/{figures.attempts} "
        f"({figures.pass_rate:.0%}) -> {tool} instead of the default {default}"
    )


def first_tool(
    story: Story, overrides: Mapping[str, str], playbook: Playbook | None
) -> tuple[str, str]:
    """The tool for a story's first attempt, with the reason."""
    kind, signals = classify(story)
    if (chosen := _override(story, kind, overrides)) is not None:
        return chosen
    default = DEFAULT_TOOL[kind]
    if (better := playbook_pick(kind, default, playbook)) is not None:
        return better
    why = f" (signals: {', '.join(signals[:4])})" if signals else " (no signals: code)"
    return default, f"default for {kind!r} stories{why}"


def choose_tool(
    story: Story,
    attempt: int,
    overrides: Mapping[str, str] | None = None,
    playbook: Playbook | None = None,
) -> tuple[str, str]:
    """(tool, reason) for `attempt` (1-based) of `story`."""
    overrides = overrides or {}
    tool, reason = first_tool(story, overrides, playbook)
    if attempt <= 1 or reason.startswith("user override"):
        return tool, reason
    if attempt % 2 == 0:
        other = ALTERNATE[tool]
        return (
            other,
            f"retry ladder: attempt {attempt} switches {tool} -> {other} (first: {reason})",
        )
    return tool, f"retry ladder: attempt {attempt} returns to {tool} (first: {reason})"


def choose_reviewer(
    implementor: str, overrides: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The test-writing agent: the user's `reviewer` override, else a tool other than the
    implementor's, so the tests do not share the implementor's blind spots."""
    overrides = overrides or {}
    if "reviewer" in overrides:
        return overrides["reviewer"], f"user override tools['reviewer']={overrides['reviewer']}"
    other = ALTERNATE[implementor]
    return other, f"a different tool than the implementor ({implementor})"


def check_overrides(overrides: Mapping[str, str], prd: Prd) -> None:
    """Refuse override keys that name nothing (a typo would silently do nothing)."""
    known = {story.id for story in prd.stories} | set(KINDS) | set(ROLE_KEYS)
    for key, tool in overrides.items():
        if key not in known:
            raise PermanentError(
                f"tools: unknown key {key!r} (use a story id, a kind {'/'.join(KINDS)}, "
                "'implementor', '*' or 'reviewer')"
            )
        if tool not in TOOLS:
            raise PermanentError(f"tools[{key!r}]: unknown tool {tool!r} ({', '.join(TOOLS)})")
