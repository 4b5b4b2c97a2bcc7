"""Run the PRD's typecheck, lint and test commands in the loop's worktree.

Each command string is split with `shlex.split` and run as an argument list (no shell), in its
own process group, with a timeout; its output goes to a file. The loop's cancel flag stops a
running check within a fraction of a second (core.processes supervises it). A check the PRD leaves out is
reported as "not configured"; a command that cannot be started (missing program, not
executable) FAILS with that reason: it never counts as not configured.

The commands are code from the PRD, run with the service's rights: they get the least
environment (`redact.child_env`, no API token, no provider keys), and their log is redacted
whole (0600, in a 0700 folder) before its tail is taken for feedback and prompts.

Bytecode under the worktree is removed before and after each `run_checks`: Python trusts a
.pyc whose source has the same mtime second and size, so a fix made in the same second as the
failed attempt (same length: `a - b` -> `a + b`) would otherwise run the old bytecode, and a
project without `__pycache__/` in its .gitignore would get it committed. The tools' own
bytecode (the interpreter's, a virtual environment's) is left alone: pytest and friends start
as fast as they always do.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from igs_dagster.core.fsutil import atomic_write_bytes, private_dir
from igs_dagster.core.process_output import read_tail, redact_file
from igs_dagster.core.processes import StartError, run_supervised
from igs_dagster.core.redact import child_env, redactor
from igs_dagster.loop.prd import CHECK_NAMES, Checks

TAIL_CHARS = 4000
KILL_GRACE_S = 2.0

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
    redact = redactor({**os.environ, **run_env})

    def result(status: CheckStatus, reason: str, returncode: int | None = None,
               duration_s: float = 0.0) -> CheckResult:
        return CheckResult(
            name=name,
            command=command,
            status=status,
            returncode=returncode,
            duration_s=round(duration_s, 3),
            output_path=str(output_path),
            tail=_redacted_tail(),
            reason=reason,
        )

    def _redacted_tail() -> str:
        # the whole log is redacted first: no secret split at the cut reaches feedback.md
        redact_file(output_path, redact)
        return read_tail(output_path, redact, TAIL_CHARS)

    started = time.monotonic()
    header = f"$ {command}\n".encode()
    try:
        finished = run_supervised(
            argv, cwd=cwd, output_path=output_path, timeout_s=timeout_s, env=run_env,
            header=header, cancel_file=cancel_file, grace_s=KILL_GRACE_S,
        )
    except StartError as err:
        what = "command not found" if err.errno == errno.ENOENT else "not executable"
        atomic_write_bytes(output_path, header + f"{what}: {argv[0]}\n".encode())
        return result("failed", f"{what}: {argv[0]}", duration_s=time.monotonic() - started)
    stopped = ("cancelled" if finished.cancelled and not finished.timed_out
               else f"timed out after {timeout_s:g} s" if finished.timed_out else "")
    if stopped:
        with open(output_path, "ab") as out:
            out.write(f"\n[{stopped}]\n".encode())
        return result("failed", stopped, finished.returncode, finished.duration_s)
    if finished.returncode == 0:
        return result("passed", "exit 0", 0, finished.duration_s)
    return result("failed", f"exit {finished.returncode}", finished.returncode, finished.duration_s)


def _skipped(folder: Path, name: str) -> bool:
    """Folders no project source lives in: hidden ones (.git, .venv, caches), node_modules,
    and virtual environments by any name."""
    return (name.startswith(".") or name == "node_modules"
            or (folder / name / "pyvenv.cfg").exists())


def forget_bytecode(root: Path) -> int:
    """Remove the `__pycache__` folders of the sources under `root`; how many."""
    removed = 0
    for folder, dirs, _files in os.walk(root):
        here = Path(folder)
        if "__pycache__" in dirs:
            shutil.rmtree(here / "__pycache__", ignore_errors=True)
            removed += 1
        dirs[:] = [d for d in dirs if d != "__pycache__" and not _skipped(here, d)]
    return removed


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
    forget_bytecode(Path(cwd))
    try:
        return _run_all(checks, Path(cwd), Path(out_dir), timeout_s, env, cancel_file)
    finally:
        forget_bytecode(Path(cwd))


def _run_all(checks: Checks, cwd: Path, out_dir: Path, timeout_s: float,
             env: Mapping[str, str] | None, cancel_file: Path | None) -> list[CheckResult]:
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
                cwd,
                out_dir,
                timeout_s=timeout_s,
                env=env,
                cancel_file=cancel_file,
            )
        )
    return results
