"""PRD loading: valid files load and save; invalid ones are refused naming the exact field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.loop.prd import load_prd, save_prd

STORY = {"id": "S1", "title": "Add", "acceptance_criteria": ["works"], "priority": 1}
CHECKS = {"test": "python -m pytest -q"}


def prd(**changes: object) -> dict:
    return {"title": "Demo", "stories": [STORY], "checks": CHECKS} | changes


def without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


INVALID = [
    (
        prd(stories=[STORY, STORY | {"id": "S2", "acceptance_criteria": []}]),
        "prd.json: stories[1].acceptance_criteria: List should have at least 1 item",
    ),
    (
        prd(stories=[STORY | {"acceptance_criteria": ["fine", "   "]}]),
        "prd.json: stories[0].acceptance_criteria: item 1 is empty",
    ),
    (
        prd(stories=[STORY, STORY | {"id": "S2"}, STORY]),
        "prd.json: stories[2].id: duplicate story id 'S1' (also stories[0].id)",
    ),
    (
        prd(stories=[STORY | {"id": "../etc"}]),
        "prd.json: stories[0].id: '../etc' is not file-name safe "
        "(letters, digits, '.', '_', '-'; max 64)",
    ),
    (
        prd(stories=[STORY | {"id": "S 1"}]),
        "prd.json: stories[0].id: 'S 1' is not file-name safe "
        "(letters, digits, '.', '_', '-'; max 64)",
    ),
    (
        prd(stories=[without(STORY, "acceptance_criteria") | {"acceptance_critera": ["x"]}]),
        "prd.json: stories[0].acceptance_critera: unknown field (not part of the PRD format); "
        "stories[0].acceptance_criteria: Field required",  # every error, not "(+1 more)"
    ),
    (
        prd(stories=[STORY | {"priority": "high"}]),
        "prd.json: stories[0].priority: Input should be a valid integer, "
        "unable to parse string as an integer",
    ),
    (prd(stories=[]), "prd.json: stories: List should have at least 1 item"),
    (
        prd(checks={"typecheck": None, "lint": None}),
        "prd.json: checks: configure at least one of typecheck, lint, test",
    ),
    (without(prd(), "checks"), "prd.json: checks: Field required"),
    (
        prd(checks={"test": "python -c 'unclosed"}),
        "prd.json: checks.test: cannot split command: No closing quotation",
    ),
    (
        prd(checks={"lint": "   "}),
        "prd.json: checks.lint: empty command (use null for 'not configured')",
    ),
    (without(prd(), "title"), "prd.json: title: Field required"),
    (
        prd(tests_dir="../elsewhere"),
        "prd.json: tests_dir: must be a relative folder inside the project",
    ),
    ([STORY], "prd.json: the PRD must be a JSON object, not list"),
]


@pytest.mark.parametrize(("raw", "message"), INVALID, ids=[m.split(": ", 1)[1] for _, m in INVALID])
def test_invalid_prd_is_refused_with_the_exact_field(
    tmp_path: Path, raw: object, message: str
) -> None:
    path = tmp_path / "prd.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(PermanentError) as err:
        load_prd(path)
    assert str(err.value) == message


def test_unreadable_prd_files(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"^prd.json: not a readable regular file"):
        load_prd(tmp_path / "prd.json")
    (tmp_path / "prd.json").write_text('{"title": "x",\n  "stories": [}')
    with pytest.raises(PermanentError, match=r"^prd.json: invalid JSON at line 2 column 15: "):
        load_prd(tmp_path / "prd.json")


def test_valid_prd_round_trips_and_marks_passes(tmp_path: Path) -> None:
    path = tmp_path / "prd.json"
    path.write_text(json.dumps(prd(description="d", stories=[STORY, STORY | {"id": "S-2.b"}])))
    loaded = load_prd(path)
    assert [s.id for s in loaded.stories] == ["S1", "S-2.b"]
    assert loaded.checks.configured() == {"test": "python -m pytest -q"}
    assert loaded.tests_dir == "tests" and not loaded.stories[0].passes
    loaded.stories[1].passes = True
    save_prd(path, loaded)
    again = load_prd(path)
    assert [s.passes for s in again.stories] == [False, True]
    assert not list(tmp_path.glob(".igs-tmp-*"))
