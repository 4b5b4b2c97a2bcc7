"""One coding-loop story end to end with the real CLIs: codex implements, claude reviews,
the real checks judge, on a real git project in a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from igs_dagster.core.settings import AgentSettings
from igs_dagster.loop import roles
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.state import load_loop
from igs_dagster_tests.agents import clis
from igs_dagster_tests.agents import model_server as ms
from igs_dagster_tests.loop.conftest import CHECKS, S_ADD, VENV_BIN, git, make_project, write_prd
from igs_dagster_tests.loop.test_loop_roles import drive

pytestmark = pytest.mark.slow

TEST_FILE = "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"


def test_codex_implements_claude_reviews_fail_then_pass(
    tmp_path: Path, server: ms.ModelServer
) -> None:
    project = make_project(tmp_path / "project")
    env_vars = clis.cli_env("codex", tmp_path / "home", server.url)
    env_vars.update(clis.cli_env("claude", tmp_path / "home", server.url))
    env_vars["PATH"] = VENV_BIN + os.pathsep + env_vars["PATH"] + os.pathsep + "/usr/bin"
    env_vars["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env = LoopEnv(
        loops_dir=tmp_path / "data" / "loops",
        vault_dir=tmp_path / "vault",
        agent=AgentSettings(),  # the default command lines
        agent_timeout_s=90,
        check_timeout_s=60,
        grace_s=0.5,
        env=env_vars,
    )
    prd = write_prd(tmp_path / "prd.json", [S_ADD], CHECKS)
    started = roles.start(
        env, {"project": str(project), "prd": str(prd), "tools": {"S1": "codex"}}
    )
    wt = Path(started["worktree"])
    server.play(
        [
            ms.write("calc.py", "def add(a, b):\n    return a - b\n"),  # codex, attempt 1: a bug
            ms.text("implemented"),
            ms.write(str(wt / "tests" / "test_s1.py"), TEST_FILE),  # claude reviews
            ms.text("tests written"),
            ms.edit("calc.py", "    return a - b", "    return a + b"),  # codex, attempt 2
            ms.text("fixed"),
            ms.write(str(wt / "tests" / "test_s1_again.py"), TEST_FILE),
            ms.text("tests written"),
        ]
    )
    results = drive(env, started["loop_id"])

    assert server.errors == []
    judged = [r for r in results if r["role"] == "judge"]
    assert [r["verdict"] for r in judged] == ["FAIL", "PASS"]
    codex = server.model_requests("responses")
    claude = server.model_requests("anthropic")
    assert len(codex) == 4 and len(claude) == 4
    # The reviewer saw the story's title and criteria, and nothing of the implementation.
    for request in (claude[0], claude[2]):
        seen = request.json_text()
        assert "Add function in calc" in seen and "`calc.add(2, 3)` returns `5`" in seen
        assert "return a - b" not in seen and "return a + b" not in seen
    # The failing check output went to the next implementor request.
    assert "assert -1 == 5" not in codex[0].json_text()
    assert "assert -1 == 5" in codex[2].json_text()
    # PASS committed the fix and the tests on the loop's branch.
    state = load_loop(env.loops_dir, started["loop_id"])
    assert state.stories["S1"].status == "passed"
    assert (wt / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    log = git(wt, "log", "--format=%s")
    assert "attempt-2 — Add function in calc" in log
    assert git(wt, "status", "--porcelain") == ""
    assert "tests/test_s1_again.py" in git(wt, "ls-files")
