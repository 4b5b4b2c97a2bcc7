"""The settings the daemon's runs see, for `igs status`: read from the environment of this
deployment's running daemon when there is one on this machine (its run workers inherit it),
else from this shell. Secrets are masked: an API token shows as `set`, a secret value inside
an agent command as `[REDACTED:NAME]`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psutil

from igs_dagster.core.settings import Settings


@contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _describe(settings: Settings, env: Mapping[str, str]) -> dict:
    from igs_dagster.core.agent_runner import DEFAULT_COMMANDS, agent_command
    from igs_dagster.core.redact import redactor
    from igs_dagster.core.settings import config_file_path
    from igs_dagster.defs.video.ui_meta import model_name

    redact = redactor(env)
    with _environ(env):
        config = config_file_path()
    commands = {}
    for tool in DEFAULT_COMMANDS:
        try:
            commands[tool] = redact(" ".join(agent_command(tool, settings.agent)))
        except Exception as err:  # noqa: BLE001 - a bad setting is shown, not raised
            commands[tool] = f"invalid: {err}"
    from igs_dagster.core.settings_sources import misspelt_variables

    return {
        "warnings": misspelt_variables(env),  # IGS_* names there that are no setting
        "config_file": str(config) if config else None,
        "vault_dir": str(settings.vault_dir),
        "data_dir": str(settings.data_dir),
        "dagster_home": env.get("DAGSTER_HOME") or str(settings.data_dir / "dagster_home"),
        "transcriber": f"{settings.transcriber.backend} "
                       f"{model_name(settings.transcriber.model, settings.transcriber.model)}",
        "agent_tool": settings.agent.tool,
        "agent_commands": commands,
        "api": f"{settings.api.host}:{settings.api.port} (token {'set' if settings.api.token else 'not set'})",
    }


def runs_settings(settings: Settings, pids: list[int], elsewhere: bool = False) -> dict:
    """{"source": "daemon pid N" | "this shell", ...settings} (errors as one line).
    `elsewhere`: the daemon runs, but not on this machine (its environment is out of reach)."""
    from igs_dagster.core.settings import load_settings

    for pid in pids:
        try:
            env = psutil.Process(pid).environ()
        except (psutil.Error, OSError):
            continue
        try:
            with _environ(env):
                theirs = load_settings()
        except Exception as err:  # noqa: BLE001
            return {"source": f"daemon pid {pid}", "error": str(err)}
        return {"source": f"daemon pid {pid}", **_describe(theirs, env)}
    source = ("this shell; the daemon runs elsewhere and its environment can't be read from here"
              if elsewhere else "this shell, no daemon running here")
    return {"source": source, **_describe(settings, dict(os.environ))}


def format_settings(view: dict) -> list[str]:
    if "error" in view:
        return [f"settings of the runs ({view['source']}): invalid: {view['error']}"]
    lines = [f"settings of the runs ({view['source']}):"]
    for name in ("config_file", "vault_dir", "data_dir", "dagster_home", "transcriber", "agent_tool", "api"):
        lines.append(f"  {name:<13}{view[name] or '-'}")
    for tool, command in view["agent_commands"].items():
        lines.append(f"  {tool + ' cmd':<13}{command}")
    lines += [f"  warning      {w}" for w in view.get("warnings") or []]
    return lines


def cmd_settings(args, settings: Settings) -> int:
    """`igs settings`: what the runs see (the daemon's environment when one runs here)."""
    if args.dagster_home:  # for `export DAGSTER_HOME="$(igs settings --dagster-home)"`
        print(settings.dagster_home)
        return 0
    from igs_dagster.cli.common import print_answer
    from igs_dagster.cli.daemon_probe import local_daemon_pids

    view = runs_settings(settings, local_daemon_pids(settings.dagster_home))
    print_answer(args, view, lambda: "\n".join(format_settings(view)))
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("settings", help="the settings the daemon's runs see (secrets masked)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--dagster-home", action="store_true",
                   help="print only the DAGSTER_HOME igs and `igs dev` use")
    p.set_defaults(func=cmd_settings)
