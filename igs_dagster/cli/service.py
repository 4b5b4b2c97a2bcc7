"""Always-on service files for one machine: systemd units (Linux) or launchd plists (macOS).

`render_services` only renders text: it needs no root, writes nothing and imports no dagster.
Two services, both restarted whenever they stop:

- `igs-dagster` / `com.igs.dagster`: `python -m igs_dagster.cli dev` (DAGSTER_HOME with the
  project's dagster.yaml, then the Dagster webserver on 127.0.0.1:3000 + the daemon);
- `igs-api` / `com.igs.api`: `python -m igs_dagster.cli api` (event HTTP API, 127.0.0.1:3111).

Secrets (IGS_API__TOKEN, passwords) do not belong in these files: they are world-readable on
most systems. Keep them in the settings file (`~/.config/igs/config.toml`, mode 600), which
the services read like any other `igs` command.
"""

from __future__ import annotations

import getpass
import os
import plistlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["systemd", "launchd"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DEFAULT_DATA_DIR = Path("~/.local/share/igs-dagster")  # same default as Settings.data_dir


@dataclass(frozen=True)
class _Service:
    unit: str  # systemd unit name, without .service
    label: str  # launchd label (= plist file name without .plist)
    command: str  # igs sub-command
    description: str


SERVICES = (
    _Service("igs-dagster", "com.igs.dagster", "dev",
             "igs-dagster: Dagster webserver + daemon (igs dev)"),
    _Service("igs-api", "com.igs.api", "api", "igs-dagster: event HTTP API (igs api)"),
)


def render_services(
    kind: Kind,
    *,
    python: str,
    project_dir: Path,
    dagster_home: Path,
    env: dict[str, str],
    user_mode: bool = True,
    log_dir: Path | None = None,
) -> dict[str, str]:
    """Return {file name: content} for the two services of `kind`.

    `python` is the interpreter of the environment igs is installed in (absolute path);
    `env` holds extra environment variables (IGS_* settings, PATH...). DAGSTER_HOME always
    comes from `dagster_home`. `user_mode` renders per-user services (systemd --user units,
    launchd LaunchAgents); otherwise system services that run as the current user.
    launchd logs go to `log_dir` (default: `<IGS_DATA_DIR>/logs`).
    """
    python_path = Path(python)
    if not python_path.is_absolute():
        raise ValueError(f"python must be an absolute path, got {python!r}")
    project_dir = Path(project_dir).expanduser().absolute()
    dagster_home = Path(dagster_home).expanduser().absolute()
    environment = _environment(kind, python_path, dagster_home, env)
    if kind == "systemd":
        return {
            f"{svc.unit}.service": _systemd_unit(svc, python_path, project_dir, environment, user_mode)
            for svc in SERVICES
        }
    if kind == "launchd":
        logs = Path(log_dir).expanduser().absolute() if log_dir else default_log_dir(env)
        return {
            f"{svc.label}.plist": _launchd_plist(svc, python_path, project_dir, environment, logs, user_mode)
            for svc in SERVICES
        }
    raise ValueError(f"unknown service kind {kind!r}: expected 'systemd' or 'launchd'")


def default_log_dir(env: dict[str, str]) -> Path:
    """`<data dir>/logs`, the data dir taken from IGS_DATA_DIR or the settings default."""
    data_dir = Path(env.get("IGS_DATA_DIR") or _DEFAULT_DATA_DIR).expanduser().absolute()
    return data_dir / "logs"


def install_hint(kind: Kind, *, user_mode: bool = True, log_dir: Path | None = None) -> str:
    """Where to copy the rendered files and how to enable them."""
    names = [f"{svc.unit}.service" for svc in SERVICES]
    labels = [svc.label for svc in SERVICES]
    logs = str(log_dir) if log_dir else "<IGS_DATA_DIR>/logs"
    if kind == "systemd" and user_mode:
        return "\n".join([
            "# systemd user services (no root needed):",
            "mkdir -p ~/.config/systemd/user",
            f"# save {' and '.join(names)} into ~/.config/systemd/user/, then:",
            "systemctl --user daemon-reload",
            f"systemctl --user enable --now {' '.join(names)}",
            "# keep them running after logout and start them at boot:",
            'loginctl enable-linger "$USER"',
            "# logs: journalctl --user -u igs-dagster -f",
            "# secrets (IGS_API__TOKEN...) go in ~/.config/igs/config.toml (chmod 600), not in the units",
        ])
    if kind == "systemd":
        return "\n".join([
            "# systemd system services (root needed to install; they run as your user):",
            f"# save {' and '.join(names)} into /etc/systemd/system/, then:",
            "sudo systemctl daemon-reload",
            f"sudo systemctl enable --now {' '.join(names)}",
            "# logs: journalctl -u igs-dagster -f",
        ])
    if kind == "launchd" and user_mode:
        lines = [
            "# launchd agents (run while you are logged in; no root needed):",
            f"mkdir -p ~/Library/LaunchAgents {logs}",
            f"# save {' and '.join(label + '.plist' for label in labels)} into ~/Library/LaunchAgents/, then:",
        ]
        lines += [f"launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/{label}.plist" for label in labels]
        lines += [
            "# restart after an upgrade: launchctl kickstart -k gui/$(id -u)/com.igs.dagster",
            "# stop and remove:        launchctl bootout gui/$(id -u)/com.igs.dagster",
            f"# logs: {logs}/igs-dagster.err.log",
            "# secrets (IGS_API__TOKEN...) go in ~/.config/igs/config.toml (chmod 600), not in the plists",
        ]
        return "\n".join(lines)
    if kind == "launchd":
        lines = [
            "# launchd daemons (start at boot without a login; root needed to install):",
            f"mkdir -p {logs}",
            f"# save {' and '.join(label + '.plist' for label in labels)} into /Library/LaunchDaemons/ (owner root:wheel, mode 644), then:",
        ]
        lines += [f"sudo launchctl bootstrap system /Library/LaunchDaemons/{label}.plist" for label in labels]
        lines.append(f"# logs: {logs}/igs-dagster.err.log")
        return "\n".join(lines)
    raise ValueError(f"unknown service kind {kind!r}: expected 'systemd' or 'launchd'")


# --------------------------------------------------------------------------- environment


def _environment(kind: Kind, python: Path, dagster_home: Path, env: dict[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        if not isinstance(value, str):
            raise ValueError(f"environment variable {name} must be a string")
        if "\x00" in value:
            raise ValueError(f"environment variable {name} contains a NUL character")
        merged[name] = value
    merged["DAGSTER_HOME"] = str(dagster_home)
    merged.setdefault("PYTHONUNBUFFERED", "1")  # logs reach the journal / log file at once
    if "PATH" not in merged:
        # services start with a bare PATH; git and the agent CLIs must still be found
        system = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        if kind == "launchd":
            system.insert(0, "/opt/homebrew/bin")
        merged["PATH"] = os.pathsep.join([str(python.parent), *system])
    return dict(sorted(merged.items()))


# --------------------------------------------------------------------------- systemd


def _systemd_escape(value: str) -> str:
    """Escape for a double-quoted systemd value: C escapes, `%` specifiers doubled."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _systemd_word(arg: str) -> str:
    """One ExecStart argument: quoted, `$` doubled so systemd expands no variable."""
    return '"' + _systemd_escape(arg).replace("$", "$$") + '"'


def _systemd_path(path: Path) -> str:
    """A path setting (WorkingDirectory=): taken literally to the end of the line."""
    text = str(path)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError(f"path {text!r} contains control characters")
    if text != text.strip():
        raise ValueError(f"path {text!r} starts or ends with white space")
    return text.replace("%", "%%")


FILE_LIMIT = 8192  # open files per service: many API connections, SQLite, logs


def _systemd_unit(svc: _Service, python: Path, project_dir: Path, env: dict[str, str],
                  user_mode: bool) -> str:
    exec_start = " ".join(_systemd_word(a) for a in (str(python), "-m", "igs_dagster.cli", svc.command))
    lines = [
        "[Unit]",
        f"Description={svc.description}",
    ]
    if not user_mode:  # network-online.target only exists for the system manager
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += [
        "StartLimitIntervalSec=0",  # never give up restarting
        "",
        "[Service]",
        "Type=simple",
    ]
    if not user_mode:
        lines.append(f"User={getpass.getuser()}")
    lines += [
        f"WorkingDirectory={_systemd_path(project_dir)}",
        f"ExecStart={exec_start}",
    ]
    lines += [f'Environment="{_systemd_escape(f"{name}={value}")}"' for name, value in env.items()]
    lines += [
        f"LimitNOFILE={FILE_LIMIT}",  # idle API clients must not use up the file descriptors
        "UMask=0077",  # data folders 0700, files 0600
        "Restart=always",
        "RestartSec=5",
        "TimeoutStopSec=60",
        "",
        "[Install]",
        f"WantedBy={'default.target' if user_mode else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- launchd


def _launchd_plist(svc: _Service, python: Path, project_dir: Path, env: dict[str, str],
                   logs: Path, user_mode: bool) -> str:
    job: dict[str, object] = {
        "Label": svc.label,
        "ProgramArguments": [str(python), "-m", "igs_dagster.cli", svc.command],
        "WorkingDirectory": str(project_dir),
        "EnvironmentVariables": env,
        "RunAtLoad": True,
        "KeepAlive": True,
        "ThrottleInterval": 10,
        "SoftResourceLimits": {"NumberOfFiles": FILE_LIMIT},
        "HardResourceLimits": {"NumberOfFiles": FILE_LIMIT},
        "Umask": 0o077,
        "StandardOutPath": str(logs / f"{svc.unit}.out.log"),
        "StandardErrorPath": str(logs / f"{svc.unit}.err.log"),
    }
    if not user_mode:
        job["UserName"] = getpass.getuser()
    try:
        return plistlib.dumps(job, fmt=plistlib.FMT_XML, sort_keys=True).decode("utf-8")
    except ValueError as err:  # XML cannot hold control characters
        raise ValueError(f"cannot write {svc.label}.plist: {err}") from None
