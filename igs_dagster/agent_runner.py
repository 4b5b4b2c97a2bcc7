"""Run an AI agent CLI (pi, claude, codex) non-interactively: the one way every caller does it.

- The CLI runs in its own session / process group, in `cwd`; the prompt goes to its stdin
  (then stdin is closed), so there is no argument-length limit and the prompt never shows up
  in `ps`. stdout+stderr go to `output_path` (claim check): callers keep the path and a short,
  redacted tail.
- Timeout, a `cancel_file` appearing, or any exception / KeyboardInterrupt / SystemExit in the
  caller's thread stops the WHOLE group: SIGTERM, then SIGKILL after `grace_s`, so no child or
  grandchild survives (even one that ignores SIGTERM). Leftover background processes of an
  agent that exited normally are stopped the same way.
- If the caller's process gets SIGTERM while no handler is installed (plain CLI use), a
  temporary handler turns it into SystemExit so the cleanup still runs; an existing handler
  (Dagster's) is left alone: it raises in the caller's thread and the same cleanup runs.
- `pid_file` records the group while it runs, so another process (`igs loop cancel`, or a
  retried step after the runner was SIGKILLed) can stop it with `kill_from_pid_file`.
- API keys pass through the environment only, and only the agent's own (`redact.child_env`:
  an allowlist plus the keys the chosen agent needs; never the API token). Values of
  secret-looking variables are redacted from the tail, `to_json()`, `on_output` chunks and
  the stored output file.

No dagster import here: assets call this module.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igs_dagster.errors import PermanentError
from igs_dagster.fsutil import (
    FILE_MODE,
    TEMP_PREFIX,
    atomic_write_bytes,
    atomic_write_json,
    private_dir,
)
from igs_dagster.redact import Redactor, redactor
from igs_dagster.redact import child_env as least_env

if TYPE_CHECKING:
    from igs_dagster.settings import AgentSettings

TAIL_CHARS = 2048
POLL_MAX_S = 0.2  # cancel_file / exit polling period once the run is under way
_KILL_SETTLE_S = 5.0  # how long to wait for SIGKILLed processes to disappear

# Default argv per tool. The prompt is never an argument: it is written to stdin.
DEFAULT_COMMANDS: dict[str, list[str]] = {
    # pi (Mario Zechner's coding agent, npm @mariozechner/pi-coding-agent, repo badlogic/pi-mono):
    #   --print / -p      "Non-interactive mode: process prompt and exit"
    #   --no-session      "Don't save session (ephemeral)"
    #   --no-extensions   "Disable extension discovery (explicit -e paths still work)"
    #   stdin: "Piped stdin | Prepend its contents to the first prompt"; piped stdin also
    #   forces print mode (main.ts: `parsed.print = true; parsed.messages.unshift(stdinContent)`).
    # Sources: packages/coding-agent/src/cli/args.ts (printHelp) in github.com/badlogic/pi-mono;
    #   packages/coding-agent/docs/cli.md in github.com/earendil-works/pi (the project's new home).
    "pi": ["pi", "--print", "--no-session", "--no-extensions"],
    # Claude Code:
    #   -p / --print      non-interactive: print the response and exit; with no prompt
    #                     argument it reads the prompt from stdin (piped input is capped at
    #                     10 MB by recent versions).
    #   --permission-mode acceptEdits   file edits and common filesystem commands run without
    #                     asking (nothing can be approved interactively in print mode); shell
    #                     commands still need allow rules (--allowedTools or settings.json).
    # Sources: https://code.claude.com/docs/en/cli-reference (flags table: -p, --permission-mode),
    #   https://code.claude.com/docs/en/permission-modes (what acceptEdits allows),
    #   https://docs.anthropic.com/en/docs/claude-code/sdk/sdk-headless (headless -p usage).
    "claude": ["claude", "-p", "--permission-mode", "acceptEdits"],
    # OpenAI Codex CLI:
    #   exec              non-interactive mode; "Codex does not ask for command or edit approvals"
    #   --sandbox workspace-write   edits inside the working folder allowed (the default for exec
    #                     is read-only); replaces the deprecated --full-auto
    #   --skip-git-repo-check       "Allow running Codex outside a Git repository" (the vault)
    #   --ephemeral       "Run without persisting session files to disk"
    #   -                 PROMPT: "If not provided as an argument (or if `-` is used),
    #                     instructions are read from stdin"
    # Sources: github.com/openai/codex codex-rs/exec/src/cli.rs (clap help texts),
    #   docs/exec.md (non-interactive mode, approvals, git check), codex-rs/utils/cli
    #   SharedCliOptions (--sandbox / -s).
    "codex": [
        "codex",
        "exec",
        "--sandbox",
        "workspace-write",
        "--skip-git-repo-check",
        "--ephemeral",
        "-",
    ],
}


@dataclass
class AgentResult:
    tool: str
    argv: list[str]  # as run, secrets redacted
    returncode: int | None  # None: never started (cancelled before start)
    timed_out: bool
    cancelled: bool
    duration_s: float
    output_path: Path
    tail: str  # last ~2 KB of output, secrets redacted

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.cancelled

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "argv": list(self.argv),
            "returncode": self.returncode,
            "ok": self.ok,
            "timed_out": self.timed_out,
            "cancelled": self.cancelled,
            "duration_s": round(self.duration_s, 3),
            "output_path": str(self.output_path),
            "tail": self.tail,
        }


def agent_command(tool: str, settings: AgentSettings | None = None) -> list[str]:
    """argv for `tool`: `settings.<tool>_command` when set, else DEFAULT_COMMANDS[tool]."""
    if tool not in DEFAULT_COMMANDS:
        known = ", ".join(DEFAULT_COMMANDS)
        raise PermanentError(f"unknown agent tool {tool!r} (known: {known})")
    override = getattr(settings, f"{tool}_command", None) if settings is not None else None
    if override is not None:
        if not override or not all(isinstance(a, str) and a for a in override):
            raise PermanentError(
                f"IGS_AGENT__{tool.upper()}_COMMAND must be a non-empty list of arguments"
            )
        return list(override)
    return list(DEFAULT_COMMANDS[tool])


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, pgrp, ...), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode("ascii", "replace").split()


def _proc_start(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot), to detect pid reuse; Linux only."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is `pgid`."""
    members: list[int] = []
    if Path("/proc/self/stat").exists():
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            fields = _proc_stat(int(entry.name))
            if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in "ZX":
                members.append(int(entry.name))
        return members
    ps = shutil.which("ps")
    if ps is None:  # last resort: a zombie leader counts as alive here
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    listing = subprocess.run(  # noqa: S603 - fixed argument list
        [ps, "-A", "-o", "pid=", "-o", "pgid=", "-o", "stat="],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == str(pgid) and not parts[2].startswith("Z"):
            members.append(int(parts[0]))
    return members


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_process_group(pgid: int, grace_s: float = 5.0) -> bool:
    """SIGTERM every live process of group `pgid`, SIGKILL what is left after `grace_s`.

    Returns True if it had to act (some member was alive), False if the group was gone.
    Refuses our own group and pgid <= 1 (those would hit the caller or the whole system).
    """
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to signal process group {pgid}")
    if not _group_members(pgid):
        return False
    if not _killpg(pgid, signal.SIGTERM):
        return False
    deadline = time.monotonic() + max(grace_s, 0.0)
    while time.monotonic() < deadline:
        if not _group_members(pgid):
            return True
        time.sleep(0.05)
    _killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + _KILL_SETTLE_S
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def _read_pid_file(pid_file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(pid_file).read_text(encoding="utf-8"))
        int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _remove_pid_file(pid_file: Path, pid: int) -> None:
    """Remove `pid_file` if it still describes `pid` (a newer run may have replaced it)."""
    data = _read_pid_file(pid_file)
    if data is not None and int(data["pid"]) == pid:
        Path(pid_file).unlink(missing_ok=True)


def kill_from_pid_file(pid_file: Path, grace_s: float = 5.0) -> bool:
    """Stop the agent group recorded in `pid_file` (from any process). True if it had to act.

    Safe against pid reuse: the leader's kernel start time is recorded and compared, and a
    pid is never reallocated while its process group still has members.
    Removes the pid file once the group is gone.
    """
    pid_file = Path(pid_file)
    data = _read_pid_file(pid_file)
    if data is None:
        return False
    pid = int(data["pid"])
    pgid = int(data.get("pgid", pid))
    if pid <= 1 or pgid <= 1 or pgid == os.getpgrp():
        return False
    recorded = data.get("proc_start")
    current = _proc_start(pid)
    if recorded is not None and current is not None and current != recorded:
        # The leader's pid now belongs to another process, so the original group is gone.
        _remove_pid_file(pid_file, pid)
        return False
    acted = stop_process_group(pgid, grace_s)
    _remove_pid_file(pid_file, pid)
    return acted


# --------------------------------------------------------------------------- running


def _resolve_executable(tool: str, program: str, env: Mapping[str, str]) -> str:
    if os.sep in program:
        if os.path.isfile(program) and os.access(program, os.X_OK):
            return program
        raise PermanentError(f"agent {tool!r} not found: {program} is not an executable file")
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise PermanentError(
            f"agent {tool!r} not found on PATH ({program!r}): install it or set "
            f"IGS_AGENT__{tool.upper()}_COMMAND"
        )
    return found


def _leader_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has the child exited? Leaves it a zombie (not reaped) so its pid/pgid stay reserved
    until the rest of its group has been dealt with."""
    if hasattr(os, "waitid"):
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None
    return proc.poll() is not None


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While running, turn SIGTERM into SystemExit if nobody handles it (main thread only).

    With the default disposition SIGTERM would end the interpreter without running any
    `finally`, leaving the agent (in its own session) orphaned. A handler someone else
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
        pass  # the agent exited or was stopped before reading everything
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()


class _OutputStreamer:
    """Feed new output to `on_output` as redacted text, holding back possible secret halves."""

    def __init__(self, path: Path, redact: Redactor, on_output: Callable[[str], None]):
        self._file = open(path, "rb")  # noqa: SIM115 - closed in finish()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._redact = redact
        self._on_output = on_output
        self._pending = ""

    def pump(self) -> None:
        data = self._file.read(1024 * 1024)
        if not data:
            return
        text = self._pending + self._decoder.decode(data)
        safe, self._pending = self._redact.split_safe(text)
        if safe:
            self._on_output(safe)

    def finish(self) -> None:
        try:
            while True:
                before = self._file.tell()
                self.pump()
                if self._file.tell() == before:
                    break
            rest = self._redact(self._pending + self._decoder.decode(b"", final=True))
            self._pending = ""
            if rest:
                self._on_output(rest)
        finally:
            self._file.close()

    def close(self) -> None:
        self._file.close()


def redact_file(path: Path, redact: Redactor) -> None:
    """Rewrite a stored output without secrets (only when one actually appears), streaming:
    any size, a secret split across read chunks is still found. Written 0600, atomically."""
    if not redact:
        return
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            found = False
            keep = b""
            while chunk := handle.read(1 << 20):
                if redact.contains_secret(keep + chunk):
                    found = True
                    break
                keep = chunk[-redact.max_bytes:]
        if not found:
            return
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            os.fchmod(fd, FILE_MODE)
            decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
            pending = ""
            with os.fdopen(fd, "wb") as out, open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    safe, pending = redact.split_safe(pending + decoder.decode(chunk))
                    out.write(safe.encode("utf-8", "surrogateescape"))
                rest = redact(pending + decoder.decode(b"", final=True))
                out.write(rest.encode("utf-8", "surrogateescape"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return


_redact_file = redact_file


def read_tail(path: Path, redact: Redactor, chars: int = TAIL_CHARS) -> str:
    # Read a margin before the window so a secret straddling its start is still matched.
    want = chars * 4 + redact.max_bytes + 4
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - want))
            data = handle.read()
    except OSError:
        return ""
    return redact(data.decode("utf-8", "replace"))[-chars:]


_read_tail = read_tail


def _write_pid_file(pid_file: Path, proc: subprocess.Popen[bytes], tool: str) -> None:
    atomic_write_json(
        pid_file,
        {
            "pid": proc.pid,
            "pgid": proc.pid,  # start_new_session: the child leads its own group
            "proc_start": _proc_start(proc.pid),
            "tool": tool,
            "runner_pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )


def run_agent(
    tool: str,
    prompt: str,
    cwd: Path,
    output_path: Path,
    *,
    timeout_s: float,
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    pid_file: Path | None = None,
    cancel_file: Path | None = None,
    grace_s: float = 5.0,
    on_output: Callable[[str], None] | None = None,
) -> AgentResult:
    """Run `tool` (argv: `argv` or DEFAULT_COMMANDS[tool]) on `prompt` in `cwd`; see module doc.

    Raises PermanentError when the CLI is missing or `cwd` is not a folder; any exception
    (including KeyboardInterrupt / SystemExit) raised while it runs stops the whole group
    before it propagates.

    `pid_file`: one per agent slot (e.g. per loop). A pid file already there at start is
    taken as the leftover of a runner that was killed hard: its group is stopped first.
    `cancel_file`: checked about every 0.2 s; present at start means nothing is run
    (returncode None, cancelled). `kill_from_pid_file` from elsewhere ends the run with a
    negative returncode (not ok); it counts as cancelled when the cancel file exists too.
    """
    command = list(argv) if argv is not None else agent_command(tool)
    if not command:
        raise PermanentError(f"empty command for agent {tool!r}")
    if timeout_s <= 0:
        raise PermanentError(f"agent timeout must be positive, got {timeout_s}")
    cwd = Path(cwd)
    if not cwd.is_dir():
        raise PermanentError(f"agent working folder {cwd} does not exist")
    # least environment: the allowlist plus this agent's keys, never the API token
    child_env = least_env(tool, env)
    redact = redactor({**os.environ, **child_env})
    shown_argv = redact.argv(command)
    executable = _resolve_executable(tool, command[0], child_env)
    output_path = Path(output_path)
    private_dir(output_path.parent)
    pid_file = Path(pid_file) if pid_file is not None else None
    cancel_file = Path(cancel_file) if cancel_file is not None else None
    if pid_file is not None and pid_file.exists():
        kill_from_pid_file(pid_file, grace_s)  # leftovers of a runner that was killed hard

    def result(returncode: int | None, timed_out: bool, cancelled: bool) -> AgentResult:
        _redact_file(output_path, redact)
        return AgentResult(
            tool=tool,
            argv=shown_argv,
            returncode=returncode,
            timed_out=timed_out,
            cancelled=cancelled,
            duration_s=time.monotonic() - start,
            output_path=output_path,
            tail=_read_tail(output_path, redact),
        )

    start = time.monotonic()
    if cancel_file is not None and cancel_file.exists():
        atomic_write_bytes(output_path, b"")
        return result(None, False, True)

    with _sigterm_raises():
        out_fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            proc = subprocess.Popen(  # noqa: S603 - argument list, never a shell
                command,
                executable=executable,
                cwd=cwd,
                env=child_env,
                stdin=subprocess.PIPE,
                stdout=out_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR):
                raise PermanentError(
                    f"agent {tool!r} cannot start ({command[0]}): {err.strerror}"
                ) from None
            raise
        finally:
            os.close(out_fd)

        pgid = proc.pid
        writer = threading.Thread(
            target=_feed_stdin,
            args=(proc.stdin, prompt.encode("utf-8")),
            name=f"agent-stdin-{proc.pid}",
            daemon=True,
        )
        streamer: _OutputStreamer | None = None
        finished = False
        timed_out = cancelled = False
        try:
            writer.start()
            if pid_file is not None:
                _write_pid_file(pid_file, proc, tool)
            if on_output is not None:
                streamer = _OutputStreamer(output_path, redact, on_output)
            delay = 0.01
            while not _leader_exited(proc):
                if streamer is not None:
                    streamer.pump()
                elapsed = time.monotonic() - start
                if elapsed >= timeout_s:
                    timed_out = True
                    break
                if cancel_file is not None and cancel_file.exists():
                    cancelled = True
                    break
                time.sleep(max(0.0, min(delay, timeout_s - elapsed)))
                delay = min(delay * 2, POLL_MAX_S)
            # Timeout / cancel: stop the agent. Normal exit: stop what it left running.
            stop_process_group(pgid, grace_s)
            returncode = proc.wait()
            if returncode != 0 and cancel_file is not None and cancel_file.exists():
                cancelled = cancelled or not timed_out  # stopped from outside after a cancel
            if streamer is not None:
                s, streamer = streamer, None
                s.finish()
            finished = True
        finally:
            if not finished:
                try:
                    stop_process_group(pgid, grace_s)
                except BaseException:
                    _killpg(pgid, signal.SIGKILL)  # interrupted again: no more grace
                    raise
                finally:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=_KILL_SETTLE_S)
                    if streamer is not None:
                        streamer.close()
            writer.join(timeout=1.0)
            if pid_file is not None:
                _remove_pid_file(pid_file, proc.pid)

    return result(returncode, timed_out, cancelled)
