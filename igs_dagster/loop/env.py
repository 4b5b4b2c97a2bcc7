"""Where loops live and how their agents and checks run: the one value every role takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igs_dagster.core.redact import child_env
from igs_dagster.core.settings import AgentSettings


@dataclass(frozen=True)
class LoopEnv:
    """Where loops live and how agents and checks run. `from_settings` for the real thing;
    tests build one with stand-in agent commands in `agent` (`AgentSettings.codex_command`...)."""

    loops_dir: Path
    vault_dir: Path
    agent: AgentSettings = field(default_factory=AgentSettings)
    agent_timeout_s: float | None = None  # default: agent.timeout_s
    check_timeout_s: float = 900.0
    grace_s: float = 5.0
    env: Mapping[str, str] | None = None  # extra environment for agents and checks

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> LoopEnv:
        return cls(settings.loops_dir, settings.vault_dir, settings.agent, **overrides)

    @property
    def timeout_s(self) -> float:
        return self.agent_timeout_s or self.agent.timeout_s

    def check_env(self) -> dict[str, str]:
        """Check commands run the PRD's code: the allowlisted environment, no secrets."""
        return child_env(None, self.env)
