"""A loop's outcome as a user reads it through `igs loop status|clean|start`: a loop whose
stories did not pass is `failed`/`incomplete` (not `complete`), each story's last failure
reason is shown, the branch comes with how to look at and merge it, finished loops' worktrees
can be cleaned (unmerged work kept without --force), and a check program that does not exist
is refused at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from igs_dagster.loop import roles
from igs_dagster.loop.driver import run_to_end
from igs_dagster.loop.state import load_loop
from igs_dagster_tests.loop.conftest import FIB, S_ADD, git, loop_env, run_cli, write_prd

_cli = run_cli


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    return tmp_path


@pytest.mark.slow
def test_failed_loop_status_reason_hints_and_clean(data_env: Path, project: Path, capsys) -> None:
    env = loop_env(data_env)
    prd = write_prd(data_env / "prd.json", [FIB])
    lid = roles.start(env, {"project": str(project), "prd": str(prd), "max_attempts": 1,
                            "tools": {"*": "codex"}})["loop_id"]
    run_to_end(env, lid, max_steps=50)
    assert load_loop(env.loops_dir, lid).status == "complete"  # the lifecycle ended ...

    code, out, err = _cli(capsys, "loop", "status")
    assert (code, err) == (0, "")
    row = next(line for line in out.splitlines() if line.startswith(lid))
    assert row.split()[2:4] == ["failed", "0/1/1"]  # ... but nothing passed: failed
    assert "S3:" in row and "None" not in row

    code, out, _ = _cli(capsys, "loop", "status", lid, "--no-runs")
    with capsys.disabled():
        print(f"\n$ igs loop status {lid} --no-runs\n{out}")
    assert out.startswith(f"loop {lid}: failed") and "None" not in out
    reasons = out.split("last failure per story:\n", 1)[1].splitlines()
    assert reasons[0].startswith("  S3: ") and len(reasons[0]) > len("  S3: ") + 5
    assert f"merge: git -C {project} merge --no-ff agent-loop/{lid}" in out
    look = next(line for line in out.splitlines() if line.startswith("look:"))
    assert git(project, *look.split(f"-C {project} ", 1)[1].split()) is not None  # runs as shown

    as_json = json.loads(_cli(capsys, "loop", "status", lid, "--no-runs", "--json")[1])
    assert as_json["outcome"] == "failed" and as_json["summary"]["last_failures"]["S3"]

    # clean: the worktree goes, the unmerged branch stays; --force deletes it
    worktree = Path(as_json["worktree"])
    assert worktree.is_dir()
    code, out, _ = _cli(capsys, "loop", "clean")
    assert code == 0 and "kept unmerged branch" in out and not worktree.exists()
    assert git(project, "branch", "--list", f"agent-loop/{lid}")
    assert str(worktree) not in git(project, "worktree", "list")
    code, out, _ = _cli(capsys, "loop", "clean", "--force")
    assert "UNMERGED branch" in out and not git(project, "branch", "--list", f"agent-loop/{lid}*")
    assert _cli(capsys, "loop", "clean")[1].startswith("nothing to clean")


def test_start_refuses_a_check_program_that_does_not_exist(data_env: Path, project: Path,
                                                           capsys) -> None:
    checks = {"typecheck": "mypyy .", "test": "python -m pytest -q"}
    prd = write_prd(data_env / "prd.json", [S_ADD], checks)
    code, out, err = _cli(capsys, "loop", "start", "--project", str(project), "--prd", str(prd))
    assert (code, out) == (2, "")
    assert err == ("igs: error: check typecheck: program 'mypyy' not found (on PATH); "
                   "fix the PRD's checks.typecheck\n")
    assert not (data_env / "data" / "loops").exists() or not any(
        p.name != ".intake.lock" for p in (data_env / "data" / "loops").iterdir())


@pytest.mark.slow
def test_agent_commands_set_for_loop_start_are_what_its_runs_use(
    data_env: Path, project: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user sets IGS_AGENT__*_COMMAND in the shell that runs `igs loop start`; the daemon's
    run workers have another environment. The runs use what the user set."""
    import dataclasses

    from igs_dagster.core.settings import load_settings
    from igs_dagster.defs.loop.resources import LoopSettings
    from igs_dagster.loop.agent_choice import with_recorded
    from igs_dagster_tests.loop.conftest import agent

    implementor, reviewer = agent("implementor.py"), agent("reviewer.py")
    monkeypatch.setenv("IGS_AGENT__CODEX_COMMAND", json.dumps(implementor))
    monkeypatch.setenv("IGS_AGENT__CLAUDE_COMMAND", json.dumps(reviewer))
    prd = write_prd(data_env / "prd.json", [S_ADD])
    code, out, err = _cli(capsys, "loop", "start", "--project", str(project), "--prd", str(prd),
                          "--tool", "*=codex", "--json")
    assert (code, err) == (0, "")
    lid = json.loads(out)["key"]

    # a run worker of the daemon: none of the user's agent settings in its environment
    monkeypatch.delenv("IGS_AGENT__CODEX_COMMAND")
    monkeypatch.delenv("IGS_AGENT__CLAUDE_COMMAND")
    worker = LoopSettings(check_timeout_s=60, grace_s=0.5).env(load_settings())
    assert worker.agent.codex_command is None
    env = with_recorded(worker, lid)
    env = dataclasses.replace(env, env=loop_env(data_env).env)  # the checks' PATH (pytest)
    state = load_loop(env.loops_dir, lid)
    roles.start(env, {"project": state.project, "prd": state.prd, "tools": state.tools,
                      "max_attempts": 1}, loop_id=lid)
    run_to_end(env, lid, max_steps=50)
    assert load_loop(env.loops_dir, lid).stories["S1"].status == "passed"

    out = _cli(capsys, "loop", "status", lid, "--no-runs")[1]
    assert f"codex    {' '.join(implementor)} (recorded at start)" in out
    assert out.startswith(f"loop {lid}: complete")
