"""The agent commands a loop runs with are the ones resolved where the user started it.

`igs loop start` runs in the user's shell; the loop's roles run in run workers launched by the
daemon, with the daemon's environment. So intake records, next to the loop's record, each
agent's command as the starting shell resolves it (`IGS_AGENT__*_COMMAND` or the default,
its program made an absolute path from that shell's PATH), and every role uses that record:
what the user set for the command is what takes effect. `igs loop status ID` shows it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from igs_dagster.core.agent_runner import DEFAULT_COMMANDS, agent_command
from igs_dagster.core.fsutil import atomic_write_json
from igs_dagster.core.settings import AgentSettings
from igs_dagster.loop.state import loop_dir

FILE = "agents.json"


def resolved_commands(agent: AgentSettings) -> dict[str, list[str]]:
    """tool -> argv as this process resolves it (program made absolute when found on PATH)."""
    commands = {}
    for tool in DEFAULT_COMMANDS:
        argv = list(agent_command(tool, agent))
        found = shutil.which(argv[0]) if argv else None
        commands[tool] = [str(Path(found).absolute()), *argv[1:]] if found else argv
    return commands


def record(loops_dir: Path, loop_id: str, agent: AgentSettings) -> Path:
    path = loop_dir(loops_dir, loop_id) / FILE
    atomic_write_json(path, {"commands": resolved_commands(agent)})
    return path


def recorded(loops_dir: Path, loop_id: str) -> dict[str, list[str]]:
    path = loop_dir(loops_dir, loop_id) / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a loop queued before this record existed: the runs' own settings
    commands = data.get("commands") if isinstance(data, dict) else None
    return {tool: list(argv) for tool, argv in (commands or {}).items()
            if tool in DEFAULT_COMMANDS and isinstance(argv, list) and argv
            and all(isinstance(a, str) and a for a in argv)}


def with_recorded(env, loop_id: str):
    """`env` (a LoopEnv) with the agent commands recorded when `loop_id` was started."""
    commands = recorded(env.loops_dir, loop_id)
    if not commands:
        return env
    agent = env.agent.model_copy(update={f"{tool}_command": argv for tool, argv in commands.items()})
    return dataclasses.replace(env, agent=agent)
