"""Fixtures for the coding-loop tests: real git projects in tmp, stand-in agent CLIs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from igs_dagster.core.settings import AgentSettings
from igs_dagster.loop.env import LoopEnv

AGENTS = Path(__file__).parent / "agents"
VENV_BIN = str(Path(sys.executable).parent)

LINT_PY = """\
import pathlib
import sys

bad = []
for path in sorted(pathlib.Path('.').rglob('*.py')):
    if any(part.startswith('.') for part in path.parts):
        continue
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if len(line) > 100 or '\\t' in line:
            bad.append(f'{path}:{number}: line too long or tab')
print('\\n'.join(bad) or 'lint ok')
sys.exit(1 if bad else 0)
"""

CHECKS = {
    "typecheck": "python -m compileall -q .",
    "lint": "python lint.py",
    "test": "python -m pytest -q -p no:cacheprovider",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(  # noqa: S603
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,  # noqa: S607
    ).stdout.strip()


def make_project(root: Path) -> Path:
    """A small git project with a lint script, a smoke test and a .gitignore."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n.pytest_cache/\n")
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "lint.py").write_text(LINT_PY)
    (root / "README.md").write_text("# demo project\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_smoke.py").write_text("def test_smoke():\n    assert True\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def story(sid: str, title: str, criteria: list[str], priority: int, description: str = "") -> dict:
    return {
        "id": sid,
        "title": title,
        "description": description,
        "acceptance_criteria": criteria,
        "priority": priority,
    }


S_ADD = story(
    "S1",
    "Add function in calc",
    ["`calc.add(2, 3)` returns `5`", "`calc.add(-1, 1)` returns `0`"],
    1,
)
S_SLUG = story(
    "S2",
    "Slugify titles",
    [
        "`textutil.slugify('Hello World')` returns `'hello-world'`",
        "`textutil.slugify('  A  b ')` returns `'a-b'`",
    ],
    2,
)
S_WORDS = story("S3", "Count words", ["`textutil.word_count('a b  c')` returns `3`"], 3)


def write_prd(path: Path, stories: list[dict], checks: dict | None = None) -> Path:
    prd = {
        "title": "Demo PRD",
        "description": "Small helpers for the demo project.",
        "stories": stories,
        "checks": checks or CHECKS,
    }
    path.write_text(json.dumps(prd, indent=2))
    return path


def agent(name: str, *args: str) -> list[str]:
    return [str(AGENTS / name), *args]


def loop_env(
    tmp_path: Path,
    *,
    codex: list[str] | None = None,
    claude: list[str] | None = None,
    pi: list[str] | None = None,
    timeout_s: float = 60.0,
) -> LoopEnv:
    return LoopEnv(
        loops_dir=tmp_path / "data" / "loops",
        vault_dir=tmp_path / "vault",
        agent=AgentSettings(
            codex_command=codex or agent("implementor.py"),
            claude_command=claude or agent("reviewer.py"),
            pi_command=pi or agent("reviewer.py"),
        ),
        agent_timeout_s=timeout_s,
        check_timeout_s=60.0,
        grace_s=0.5,
        env={
            "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
            # the nested pytest of the checks: skip this venv's plugins (half a second each)
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        },
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


FIB = story("S3", "Fibonacci", ["`mathx.fib(10)` returns `55`"], 3)  # the stand-in can't


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`igs ARGV...` in this process: (exit code, stdout, stderr)."""
    from igs_dagster.cli.app import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
