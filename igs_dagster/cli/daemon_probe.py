"""Is a Dagster daemon serving this deployment on this machine? A process check (psutil): it
changes the moment the daemon starts or dies, needs no Dagster import (fast enough for every
`igs send`), and counts only daemons whose DAGSTER_HOME is this deployment's."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from igs_dagster.dagster_compat import DAEMON_MODULE, DAEMON_SCRIPT


def _is_daemon(cmdline: list[str]) -> bool:
    return any(
        Path(arg).name == DAEMON_SCRIPT or arg == DAEMON_MODULE for arg in cmdline
    ) and "run" in cmdline


def _same_home(proc: psutil.Process, home: Path) -> bool:
    try:
        theirs = proc.environ().get("DAGSTER_HOME")
        cwd = proc.cwd()
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
        return False
    where = theirs or cwd  # `igs dev` runs Dagster from DAGSTER_HOME
    try:
        return Path(where).resolve() == home.resolve()
    except OSError:
        return False


def local_daemon_pids(dagster_home: Path) -> list[int]:
    """Pids of live `dagster-daemon run` processes using `dagster_home` (ours, any user we
    may inspect)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE or not _is_daemon(cmdline):
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if proc.pid != os.getpid() and _same_home(proc, dagster_home):
            found.append(proc.pid)
    return found


NO_DAEMON_HINT = "no Dagster daemon is running here: start `igs dev` or the service to process it"
