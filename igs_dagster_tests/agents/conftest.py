"""Fixtures for the tests through the real agent CLIs: the npm binaries, one scripted model
server per session, a temporary HOME per CLI run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from igs_dagster_tests.agents import clis
from igs_dagster_tests.agents.model_server import ModelServer


@pytest.fixture(scope="session")
def agent_bins() -> Path:
    """node_modules/.bin with pi, claude and codex; skipped when absent, FAILED under CI=true."""
    missing = clis.missing()
    if missing:
        message = (
            f"agent CLIs not installed ({', '.join(missing)}): run `npm ci` in "
            "igs_dagster_tests/agents (scripts/test does)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return clis.bin_dir()


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture
def server(model_server: ModelServer, agent_bins: Path) -> Iterator[ModelServer]:
    """The shared server with an empty script; hung answers are let go afterwards."""
    model_server.play([])
    yield model_server
    model_server.play([])


@pytest.fixture
def cli_env(tmp_path: Path, server: ModelServer, monkeypatch: pytest.MonkeyPatch):
    """`cli_env(tool)`: put that CLI's environment (temporary HOME, provider config pointing
    at the server) into os.environ, which agent_runner passes on; returns the dict."""

    def apply(tool: str) -> dict[str, str]:
        env = clis.cli_env(tool, tmp_path / f"home-{tool}", server.url)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    return apply


@pytest.fixture(params=clis.TOOLS)
def tool(request: pytest.FixtureRequest, cli_env) -> str:
    """Each agent CLI in turn (pi, claude, codex), its environment in place (`cli_env`)."""
    cli_env(request.param)
    return request.param
