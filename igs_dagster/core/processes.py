"""Child processes under supervision: the one mechanism agents, loop checks and the watchdog use.

- `run_supervised` runs an argument list (never a shell) under a guard process (core/guard.py):
  the command gets its own session / process group, output to a file, optional stdin data; it
  ends on exit, timeout, a cancel file appearing, or any exception in the caller's thread. Then
  the guard stops the WHOLE tree (SIGTERM, SIGKILL after `grace_s`): the command's group and
  every descendant, even one that ignores SIGTERM or left the group (setsid); on Linux the guard
  is their child subreaper, so even one whose parent had exited is found.
- The command dies with its caller: the guard watches a pipe whose only writer is the caller,
  and when the caller is killed hard (SIGKILL, the OOM killer: no `finally` runs) the pipe's
  EOF makes the guard stop the tree. Same on macOS (a pipe, no Linux-only mechanism).
- The caller waits on the guard's exit (a pidfd on Linux, `waitpid` elsewhere), looking only
  at the cancel file and the output file every CHECK_S, never at the process table.
- A pid file records a running command (core/process_groups.py) so another process can stop
  it; its output is read back redacted (core/process_output.py).

No Dagster import here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from igs_dagster.core.fsutil import atomic_write_bytes
from igs_dagster.core.guard import KILL_SETTLE_S, Guard
from igs_dagster.core.process_groups import (
    kill_from_pid_file,
    killpg,
    remove_pid_file,
    start_time,
    stop_process_group,
    write_pid_file,
)
from igs_dagster.core.process_output import OutputStreamer
from igs_dagster.core.redact import Redactor

CHECK_S = 0.2  # how often the cancel file and the output are looked at while the command runs


@dataclass
class Finished:
    """How a supervised process ended."""

    returncode: int | None  # None: never started (cancelled before start)
    timed_out: bool
    cancelled: bool
    duration_s: float


class StartError(OSError):
    """The program could not be started (missing, not executable): the caller words it."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While running, turn SIGTERM into SystemExit if nobody handles it (main thread only).

    With the default disposition SIGTERM would end the interpreter without running any
    `finally`, leaving the child (in its own session) orphaned. A handler someone else
    installed (Dagster's) is kept: it raises in the caller's thread and our cleanup runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            yield
            return
    except ValueError:
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _raise:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _feed_stdin(stream: Any, data: bytes) -> None:
    try:
        stream.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the process exited or was stopped before reading everything
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()


def run_supervised(
    argv: list[str],
    *,
    cwd: Path,
    output_path: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    executable: str | None = None,
    stdin_data: bytes | None = None,
    header: bytes = b"",
    cancel_file: Path | None = None,
    pid_file: Path | None = None,
    label: str = "",
    grace_s: float = 5.0,
    redact: Redactor | None = None,
    on_output: Callable[[str], None] | None = None,
) -> Finished:
    """Run `argv` under supervision (module doc); stdout+stderr to `output_path` (mode 0600,
    starting with `header`). Raises StartError when the program cannot start.

    `pid_file`: a pid file already there at start is the leftover of a runner that was killed
    hard: its group is stopped first. `cancel_file` present at start: nothing runs.
    `on_output` gets new output as redacted text (`redact` required).
    """
    start = time.monotonic()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if pid_file is not None and Path(pid_file).exists():
        kill_from_pid_file(Path(pid_file), grace_s)
    if cancel_file is not None and Path(cancel_file).exists():
        atomic_write_bytes(output_path, header)
        return Finished(None, False, True, time.monotonic() - start)

    with _sigterm_raises():
        out_fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(out_fd, header)
            guard = Guard(argv, executable, cwd, env,
                           subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                           out_fd, grace_s)
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR):
                raise StartError(err.errno, err.strerror, argv[0]) from None
            raise
        finally:
            os.close(out_fd)
        try:
            return _supervise(guard, argv, start, timeout_s, stdin_data, output_path, header,
                              cancel_file, pid_file, label, grace_s, redact, on_output)
        finally:
            guard.close()


def _supervise(guard: Guard, argv: list[str], start: float, timeout_s: float,
               stdin_data: bytes | None, output_path: Path, header: bytes,
               cancel_file: Path | None, pid_file: Path | None, label: str, grace_s: float,
               redact: Redactor | None, on_output: Callable[[str], None] | None) -> Finished:
    """The guard has started: wait for the command, stop it when asked, collect its end."""
    first = guard.line()
    if not first.startswith("pid "):
        guard.wait(KILL_SETTLE_S)
        code = int(first.split()[1]) if first.startswith("error ") else errno.EIO
        if code in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR):
            raise StartError(code, os.strerror(code), argv[0])
        raise OSError(code, f"the guard could not start {argv[0]}: {os.strerror(code)}")
    pid = int(first.split()[1])
    started = start_time(pid)
    writer = None
    if stdin_data is not None:
        writer = threading.Thread(target=_feed_stdin, args=(guard.proc.stdin, stdin_data),
                                  name=f"stdin-{pid}", daemon=True)
    streamer: OutputStreamer | None = None
    finished = False
    timed_out = cancelled = False
    try:
        if writer is not None:
            writer.start()
        if pid_file is not None:
            write_pid_file(Path(pid_file), pid, label, guard.proc.pid)
        if on_output is not None and redact is not None:
            streamer = OutputStreamer(output_path, redact, on_output, len(header))
        # with nothing to look at, sleep until the guard exits or the timeout
        every = CHECK_S if streamer is not None or cancel_file is not None else timeout_s
        while True:
            left = start + timeout_s - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if guard.wait(min(every, left)):
                break
            if streamer is not None:
                streamer.pump()
            if cancel_file is not None and Path(cancel_file).exists():
                cancelled = True
                break
        guard.stop()  # timeout / cancel: stops the tree; after an exit: returns at once
        finished = True
    finally:
        if not finished:
            try:
                guard.stop()
            except BaseException:
                guard.proc.kill()  # interrupted again: no more grace
                killpg(pid, signal.SIGKILL)
                raise
            finally:
                if streamer is not None:
                    streamer.close()
        if writer is not None:
            writer.join(timeout=1.0)
        if pid_file is not None:
            remove_pid_file(Path(pid_file), pid)
    last = guard.line()
    if last.startswith("rc "):
        returncode = int(last.split()[1])
    else:  # the guard itself was killed: stop the command's group from here
        stop_process_group(pid, grace_s, started=started)
        returncode = guard.proc.returncode
    if returncode != 0 and cancel_file is not None and Path(cancel_file).exists():
        cancelled = cancelled or not timed_out  # stopped from outside after a cancel
    if streamer is not None:
        streamer.finish()
    return Finished(returncode, timed_out, cancelled, time.monotonic() - start)
