"""Run the PRD's typecheck, lint and test commands in the loop's worktree.

Each command string is split with `shlex.split` and run as an argument list (no shell), in its
own process group, with a timeout; its output goes to a file. The loop's cancel flag stops a
running check within POLL_S seconds. A check the PRD leaves out is
reported as "not configured"; a command that cannot be started (missing program, not
executable) FAILS with that reason: it never counts as not configured.

The commands are code from the PRD, run with the service's rights: they get the least
environment (`redact.child_env`, no API token, no provider keys), and their log is redacted
whole (0600, in a 0700 folder) before its tail is taken for feedback and prompts.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from igs_dagster.agent_runner import read_tail, redact_file, stop_process_group
from igs_dagster.fsutil import FILE_MODE, private_dir
from igs_dagster.loop.prd import CHECK_NAMES, Checks
from igs_dagster.redact import child_env, redactor

TAIL_CHARS = 4000
KILL_GRACE_S = 2.0
POLL_S = 0.2  # how often a running check looks at the cancel flag

CheckStatus = Literal["passed", "failed", "not configured"]


class CheckResult(BaseModel):
    name: str
    command: str | None = None
    status: CheckStatus
    returncode: int | None = None
    duration_s: float = 0.0
    output_path: str | None = None
    tail: str = ""
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def configured(self) -> bool:
        return self.status != "not configured"

    def line(self) -> str:
        """`test: failed (exit 1, 0.8 s)` - one line for notes and progress."""
        if not self.configured:
            return f"{self.name}: not configured"
        return f"{self.name}: {self.status} ({self.reason}, {self.duration_s:.1f} s)"


def _tail(path: Path, env: Mapping[str, str], chars: int = TAIL_CHARS) -> str:
    """The end of a check's log, after the whole log was redacted (no secret split at the cut)."""
    redact = redactor({**os.environ, **env})
    redact_file(path, redact)
    return read_tail(path, redact, chars)


def run_check(
    name: str,
    command: str | None,
    cwd: Path,
    out_dir: Path,
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cancel_file: Path | None = None,
) -> CheckResult:
    if not command:
        return CheckResult(name=name, status="not configured", reason="not configured")
    private_dir(out_dir)
    output_path = out_dir / f"{name}.log"
    run_env = child_env(None, env)  # `env`: extra variables on top of the least environment
    argv = shlex.split(command)
    started = time.monotonic()

    def result(status: CheckStatus, reason: str, returncode: int | None = None) -> CheckResult:
        return CheckResult(
            name=name,
            command=command,
            status=status,
            returncode=returncode,
            duration_s=round(time.monotonic() - started, 3),
            output_path=str(output_path),
            tail=_tail(output_path, run_env),
            reason=reason,
        )

    fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(f"$ {command}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv from shlex.split, no shell
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=run_env,
                start_new_session=True,
            )
        except FileNotFoundError:
            out.write(f"command not found: {argv[0]}\n".encode())
            out.flush()
            return result("failed", f"command not found: {argv[0]}")
        except PermissionError:
            out.write(f"not executable: {argv[0]}\n".encode())
            out.flush()
            return result("failed", f"not executable: {argv[0]}")
        deadline = started + timeout_s
        stopped = ""
        try:
            while True:
                try:
                    returncode = proc.wait(
                        timeout=max(0.0, min(POLL_S, deadline - time.monotonic()))
                    )
                    break
                except subprocess.TimeoutExpired:
                    if cancel_file is not None and Path(cancel_file).exists():
                        stopped = "cancelled"
                    elif time.monotonic() >= deadline:
                        stopped = f"timed out after {timeout_s:g} s"
                    if stopped:
                        break
        finally:
            # Stopped, interrupted, or finished: nothing the check started may keep running
            # (servers, watchers, a hung test).
            stop_process_group(proc.pid, KILL_GRACE_S)
            proc.wait()
        if stopped:
            out.write(f"\n[{stopped}]\n".encode())
            out.flush()
            return result("failed", stopped, proc.returncode)
    if returncode == 0:
        return result("passed", "exit 0", 0)
    return result("failed", f"exit {returncode}", returncode)


def run_checks(
    checks: Checks,
    cwd: Path,
    out_dir: Path,
    *,
    timeout_s: float = 900.0,
    env: Mapping[str, str] | None = None,
    cancel_file: Path | None = None,
) -> list[CheckResult]:
    """Run typecheck, lint and test (in that order); every check runs, even after a failure,
    unless `cancel_file` appears (the running check is stopped, the rest are not started)."""
    results: list[CheckResult] = []
    for name in CHECK_NAMES:
        if cancel_file is not None and Path(cancel_file).exists() and getattr(checks, name):
            results.append(
                CheckResult(
                    name=name, command=getattr(checks, name), status="failed", reason="cancelled"
                )
            )
            continue
        results.append(
            run_check(
                name,
                getattr(checks, name),
                Path(cwd),
                Path(out_dir),
                timeout_s=timeout_s,
                env=env,
                cancel_file=cancel_file,
            )
        )
    return results
