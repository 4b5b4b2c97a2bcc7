"""Loop records (create, load, list, cancel flag) and the playbook merge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.loop import state as st
from igs_dagster.loop.playbook import load_playbook, merge_loop
from igs_dagster.loop.prd import Prd


def _prd() -> Prd:
    return Prd(
        title="t",
        stories=[
            {"id": "S1", "title": "a", "acceptance_criteria": ["x"], "priority": 1},
            {"id": "S2", "title": "b", "acceptance_criteria": ["y"], "priority": 2, "passes": True},
        ],
        checks={"test": "pytest"},
    )


def test_new_load_list_and_cancel(tmp_path: Path) -> None:
    loops = tmp_path / "loops"
    made = st.new_loop(
        loops,
        project=tmp_path,
        prd_source=tmp_path / "prd.json",
        prd=_prd(),
        story_kinds={"S1": "ui"},
        max_attempts=2,
        tools={"S1": "pi"},
    )
    assert re.fullmatch(r"loop-\d{8}-\d{6}-[0-9a-f]{4}", made.loop_id)
    assert made.branch == f"agent-loop/{made.loop_id}" and made.status == "queued"
    assert made.worktree == str(loops / made.loop_id / "worktree")
    assert made.stories["S1"].kind == "ui" and made.stories["S2"].status == "passed"
    assert json.loads((loops / made.loop_id / "prd.json").read_text())["title"] == "t"
    loaded = st.load_loop(loops, made.loop_id)
    assert loaded.model_dump() == made.model_dump()
    loop_b = dict(project=tmp_path, prd_source=tmp_path / "p", prd=_prd(), story_kinds={},
                  loop_id="loop-b")
    other = st.new_loop(loops, **loop_b)
    assert [s.loop_id for s in st.list_loops(loops)] == [made.loop_id, other.loop_id]
    with pytest.raises(PermanentError, match="already exists"):
        st.new_loop(loops, **loop_b)  # the same id again
    with pytest.raises(PermanentError, match="invalid loop id"):
        st.load_loop(loops, "../etc")
    with pytest.raises(PermanentError, match="no loop 'loop-zz'"):
        st.request_cancel(loops, "loop-zz")
    assert not st.is_cancelled(loops, made.loop_id)
    flag = st.request_cancel(loops, made.loop_id)
    assert flag == loops / made.loop_id / "CANCEL" and st.is_cancelled(loops, made.loop_id)
    assert st.request_cancel(loops, made.loop_id) == flag  # idempotent


def _judged(loop_id: str) -> st.LoopState:
    record = st.StoryRecord(id="S1", title="a", kind="code", priority=1, status="passed", attempts=[
        st.Attempt(number=1, tool="codex", verdict="FAIL", durations={"implement": 4.0}),
        st.Attempt(number=2, tool="claude", verdict="PASS", durations={"implement": 2.0}),
    ])
    ui = st.StoryRecord(id="S2", title="b", kind="ui", priority=2, status="passed", attempts=[
        st.Attempt(number=1, tool="pi", verdict="PASS", durations={"implement": 1.0}),
        st.Attempt(number=2, tool="pi", verdict=None),  # never judged: not counted
    ])
    return st.LoopState(
        loop_id=loop_id,
        project="/p",
        worktree="/w",
        branch="b",
        prd_source="/s",
        prd="/d",
        stories={"S1": record, "S2": ui},
    )


def test_playbook_merges_loops_once_each(tmp_path: Path) -> None:
    assert load_playbook(tmp_path).stats == {}
    merge_loop(tmp_path, _judged("loop-a"))
    merge_loop(tmp_path, _judged("loop-a"))  # a retried retro
    book = merge_loop(tmp_path, _judged("loop-b"))
    assert book.loops == ["loop-a", "loop-b"]
    codex, claude, pi = book.get("codex", "code"), book.get("claude", "code"), book.get("pi", "ui")
    assert (codex.attempts, codex.passes, codex.pass_rate, codex.mean_duration_s) == (
        2,
        0,
        0.0,
        4.0,
    )
    assert (claude.attempts, claude.passes, claude.pass_rate, claude.mean_attempts_to_pass) == (
        2,
        2,
        1.0,
        2.0,
    )
    assert (pi.attempts, pi.passes, pi.mean_attempts_to_pass, pi.mean_duration_s) == (
        2,
        2,
        1.0,
        1.0,
    )
    on_disk = json.loads((tmp_path / "playbook.json").read_text())
    assert on_disk["stats"]["claude"]["code"]["pass_rate"] == 1.0
    (tmp_path / "playbook.json").write_text("{broken")
    assert load_playbook(tmp_path).stats == {}  # a damaged playbook only loses the hints


def test_loop_modules_do_not_import_dagster() -> None:
    import subprocess
    import sys

    code = (
        "import sys, igs_dagster.loop.roles, igs_dagster.loop.retro; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "[]"
