"""`igs loop resume ID` as a user drives it: `igs loop start`, the loop's roles as the
daemon's runs call them (with the agent commands recorded at start), `igs loop
status|cancel|clean|resume`. Real git projects in tmp, the stand-in agents behind the
dispatcher of test_loop_dagster.py (a story is implemented wrong while its `buggy-<story>`
file exists). The same on a real daemon: igs_dagster_tests/test_loop_resume_dagster.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.settings import load_settings
from igs_dagster.loop import roles
from igs_dagster.loop.driver import run_to_end
from igs_dagster.loop.state import LoopState, load_loop
from igs_dagster_tests.loop.conftest import (
    FIB,
    S_ADD,
    S_SLUG,
    git,
    make_project,
    run_cli,
    write_prd,
)
from igs_dagster_tests.test_loop_dagster import _agent_env

_cli = run_cli


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's shell: data folder, vault, loop roots and the stand-in agent commands."""
    for key, value in _agent_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster_home"))
    monkeypatch.setenv("IGS_LOOP__ROOTS", json.dumps([str(tmp_path)]))
    return tmp_path


def _start(capsys, project: Path, prd: Path, *extra: str) -> str:
    code, out, err = _cli(capsys, "loop", "start", "--project", str(project), "--prd", str(prd),
                          "--tool", "*=codex", "--json", *extra)
    assert (code, err) == (0, ""), err
    return json.loads(out)["key"]


def _drive(loop_id: str, max_steps: int = 60) -> LoopState:
    """What the daemon's runs do: `loop_begin` (start a queued loop), then each next role."""
    from igs_dagster.defs.loop.resources import LoopSettings
    from igs_dagster.loop.agent_choice import with_recorded

    env = with_recorded(LoopSettings(check_timeout_s=60, grace_s=0.5).env(load_settings()),
                        loop_id)
    state = load_loop(env.loops_dir, loop_id)
    if state.status == "queued":
        roles.start(env, {"project": state.project, "prd": state.prd, "tools": state.tools,
                          "max_attempts": state.max_attempts,
                          "max_iterations": state.max_iterations}, loop_id=loop_id)
    run_to_end(env, loop_id, max_steps=max_steps)
    return load_loop(env.loops_dir, loop_id)


def _loops_dir(root: Path) -> Path:
    return root / "data" / "loops"


def _unchanged(root: Path, loop_id: str):
    """What a refused resume must leave as it was: the record and the inbox."""
    return ((_loops_dir(root) / loop_id / "loop.json").read_text(),
            EventQueue(root / "data" / "queue.sqlite3").last_id())


def test_resume_of_an_unknown_loop_is_refused(user: Path, capsys) -> None:
    code, out, err = _cli(capsys, "loop", "resume", "loop-20250101-000000-abcd")
    assert (code, out) == (2, "")
    assert err == (f"igs: error: no loop 'loop-20250101-000000-abcd' in "
                   f"{_loops_dir(user)}\n")


@pytest.mark.slow
def test_failed_second_story_resumed_completes_keeping_the_first(user: Path, capsys) -> None:
    project = make_project(user / "project")
    prd = write_prd(user / "prd.json", [S_ADD, S_SLUG])
    buggy = user / "agent-state" / "buggy-S2"
    buggy.touch()
    lid = _start(capsys, project, prd, "--max-attempts", "1")

    # a queued loop is not resumed (nor a running one): one line, nothing changed
    before = _unchanged(user, lid)
    code, out, err = _cli(capsys, "loop", "resume", lid)
    assert (code, out) == (2, "")
    assert err == (f"igs: error: loop {lid} is queued: only a failed, incomplete or cancelled "
                   f"loop can be resumed (igs loop cancel {lid} stops it)\n")
    assert _unchanged(user, lid) == before

    state = _drive(lid)
    assert state.status == "complete" and state.next_step == "done"
    assert [state.stories[s].status for s in ("S1", "S2")] == ["passed", "skipped"]
    s1_commits = state.stories["S1"].attempts[0].commits
    assert "incomplete" in _cli(capsys, "loop", "status", lid, "--no-runs")[1].splitlines()[0]

    buggy.unlink()  # the agent does it right now
    code, out, err = _cli(capsys, "loop", "resume", lid)
    assert (code, err) == (0, "")
    assert out == (f"resumed loop {lid} (resume 1, was incomplete): from story S2; 1 of 2 "
                   f"stories passed and kept (branch agent-loop/{lid})\n")
    state = load_loop(_loops_dir(user), lid)
    assert state.status == "queued" and state.resume == 1 and state.next_step == "plan"
    queue = EventQueue(user / "data" / "queue.sqlite3")
    (event,) = queue.after(queue.last_id() - 1)
    assert (event.key, event.event.name) == (lid, "loop.start")
    assert queue.retry_numbers([event.id]) == {event.id: 1}  # its run key: resume-1

    state = _drive(lid)
    assert state.status == "complete" and state.next_step == "done"
    s1, s2 = state.stories["S1"], state.stories["S2"]
    assert s1.status == s2.status == "passed"
    assert len(s1.attempts) == 1 and s1.attempts[0].commits == s1_commits  # not redone
    assert [a.verdict for a in s2.attempts] == ["FAIL", "PASS"]
    branch = f"agent-loop/{lid}"
    log = git(project, "log", "--format=%H %s", branch)
    assert s1_commits[0] in log
    assert log.count(f"feat: [{lid}] [S1] attempt-1") == 1
    assert f"feat: [{lid}] [S2] attempt-2 — Slugify titles" in log
    assert f"chore: [{lid}] resume-1 — progress.txt" in log
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    # the first attempt's wrong work stays on its side branch; clean --force finds it later
    assert git(project, "branch", "--list", f"{branch}--skipped-S2")

    code, out, _ = _cli(capsys, "loop", "status", lid, "--no-runs")
    with capsys.disabled():
        print(f"\n$ igs loop status {lid} --no-runs\n{out}")
    assert out.startswith(f"loop {lid}: complete\n")
    assert "\nresumed  #1 at " in out and "(was incomplete: " in out and "from S2 (plan)" in out
    assert f"merge: git -C {project} merge --no-ff {branch}" in out
    look = next(line for line in out.splitlines() if line.startswith("look:"))
    shown = git(project, *look.split(f"-C {project} ", 1)[1].split())
    assert "[S1] attempt-1" in shown and "[S2] attempt-2" in shown
    row = next(line for line in _cli(capsys, "loop", "status")[1].splitlines()
               if line.startswith(lid))
    assert row.split()[2:4] == ["complete", "2/0/2"] and row.split()[-1] == "1"

    before = _unchanged(user, lid)
    code, out, err = _cli(capsys, "loop", "resume", lid)
    assert (code, out, err) == (
        2, "", f"igs: error: loop {lid} is complete: every story passed, nothing to resume\n")
    assert _unchanged(user, lid) == before

    from igs_dagster.core.system_log import read_entries

    resumes = [e for e in read_entries(load_settings().system_log) if e.action == "loop.resume"]
    assert len(resumes) == 1 and lid in resumes[0].detail


@pytest.mark.slow
def test_cancelled_loop_resumes_its_interrupted_attempt(user: Path, capsys) -> None:
    project = make_project(user / "project")
    lid = _start(capsys, project, write_prd(user / "prd.json", [S_ADD]))
    _drive(lid, max_steps=1)  # started, planned: the implementor is next
    code, out, _ = _cli(capsys, "loop", "cancel", lid)
    assert code == 0 and out.startswith(f"loop {lid}: cancelled")
    assert load_loop(_loops_dir(user), lid).next_step is None

    code, out, err = _cli(capsys, "loop", "resume", lid)
    assert (code, err) == (0, "")
    assert out.startswith(f"resumed loop {lid} (resume 1, was cancelled): from story S1 "
                          "attempt 1 (implement); 0 of 1 stories passed")
    assert not (_loops_dir(user) / lid / "CANCEL").exists()
    state = _drive(lid)
    assert state.status == "complete" and state.stories["S1"].status == "passed"
    assert [a.number for a in state.stories["S1"].attempts] == [1]  # the same attempt went on


@pytest.mark.slow
def test_resume_of_a_cleaned_loop_is_refused(user: Path, capsys) -> None:
    project = make_project(user / "project")
    lid = _start(capsys, project, write_prd(user / "prd.json", [FIB]), "--max-attempts", "1")
    assert _drive(lid).stories["S3"].status == "skipped"
    assert _cli(capsys, "loop", "clean")[0] == 0
    before = _unchanged(user, lid)
    code, out, err = _cli(capsys, "loop", "resume", lid)
    assert (code, out) == (2, "")
    assert err == (f"igs: error: loop {lid}: its worktree was removed (igs loop clean); its "
                   f"branch agent-loop/{lid} is kept (merge or look at it); start a new loop to "
                   "go on\n")
    assert _unchanged(user, lid) == before
