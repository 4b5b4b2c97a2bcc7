"""Run an AI agent CLI (pi, claude, codex) non-interactively: the one way every caller does it.

Which argv each CLI gets (DEFAULT_COMMANDS, or IGS_AGENT__<TOOL>_COMMAND), and the agent's side
of supervision (core.processes does the rest: own process group, timeout, cancel file, pid
file, whole-tree stop on any exit or exception):
- the prompt goes to the CLI's stdin (then stdin is closed), so there is no argument-length
  limit and the prompt never shows up in `ps`;
- stdout+stderr go to `output_path` (claim check): callers keep the path and a short tail;
- API keys pass through the environment only, and only the agent's own (`redact.child_env`:
  an allowlist plus the keys the chosen agent needs; never the API token). Values of
  secret-looking variables are redacted from the tail, `to_json()`, `on_output` chunks and
  the stored output file.

No dagster import here: assets call this module.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import private_dir
from igs_dagster.core.process_output import read_tail, redact_file
from igs_dagster.core.processes import StartError, run_supervised
from igs_dagster.core.redact import child_env as least_env
from igs_dagster.core.redact import redactor

if TYPE_CHECKING:
    from igs_dagster.core.settings import AgentSettings

TAIL_CHARS = 2048
__all__ = ["AgentResult", "agent_command", "run_agent"]

# Default argv per tool. The prompt is never an argument: it is written to stdin.
# Checked against the real CLIs from npm (igs_dagster_tests/agents/package.json) pointed at a
# scripted model server: pi 0.73.1, claude 2.1.332, codex 0.169.0.
DEFAULT_COMMANDS: dict[str, list[str]] = {
    # pi (Mario Zechner's coding agent, npm @mariozechner/pi-coding-agent, repo badlogic/pi-mono):
    #   --print / -p      "Non-interactive mode: process prompt and exit"
    #   --no-session      "Don't save session (ephemeral)"
    #   stdin: "Piped stdin | Prepend its contents to the first prompt"; piped stdin also
    #   forces print mode (main.ts: `parsed.print = true; parsed.messages.unshift(stdinContent)`).
    #   pi 0.73.1 itself offers the model only read, bash, edit, write: web search comes from
    #   what the user installs (an extension in ~/.pi/agent/extensions/ registering a search
    #   tool, or a skill such as pi-skills' brave-search). So extension and skill discovery
    #   stay ON (no --no-extensions, which used to be here and removed such a tool: checked
    #   from the tool list pi sends).
    # Sources: packages/coding-agent/src/cli/args.ts (printHelp) in github.com/badlogic/pi-mono;
    #   docs/extensions.md, docs/skills.md of the npm package.
    "pi": ["pi", "--print", "--no-session"],
    # Claude Code:
    #   -p / --print      non-interactive: print the response and exit; with no prompt
    #                     argument it reads the prompt from stdin.
    #   --permission-mode acceptEdits   file edits run without asking (nothing can be
    #                     approved interactively in print mode).
    #   --allowedTools=WebSearch,WebFetch   2.1.332 in print mode answers a WebFetch call with
    #                     "Claude requested permissions to use WebFetch, but you haven't
    #                     granted it yet." unless allowed here (seen in the recorded requests).
    #                     One `=` argument: the option is variadic and would eat what follows.
    #                     (Both are "deferred" tools in 2.1.x: named in the system prompt and
    #                     loaded through ToolSearch.) Research off: --disallowedTools instead.
    #   Exit code 0 on success; a warning about an unknown model id goes to stderr.
    # Sources: `claude --help` of 2.1.332; https://code.claude.com/docs/en/cli-reference.
    "claude": [
        "claude",
        "-p",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools=WebSearch,WebFetch",
    ],
    # OpenAI Codex CLI:
    #   exec              non-interactive mode; "Codex does not ask for command or edit approvals"
    #   --sandbox workspace-write   edits inside the working folder allowed (the default for exec
    #                     is read-only)
    #   --skip-git-repo-check       "Allow running Codex outside a Git repository" (the vault)
    #   --ephemeral       "Run without persisting session files to disk"
    #   -c web_search="live"   0.169.0 offers its web_search tool by default with
    #                     `external_web_access: false` (cached results only); "live" turns on
    #                     live access (seen in the tool definitions of the recorded requests).
    #                     Research off: web_search="disabled".
    #   -                 PROMPT: "If not provided as an argument (or if `-` is used),
    #                     instructions are read from stdin"
    #   Progress (the header, commands run) goes to stderr, the final message to stdout.
    # Sources: `codex exec --help` of 0.169.0 (-c key=value, --enable/--disable);
    #   github.com/openai/codex codex-rs/exec/src/cli.rs, docs/exec.md.
    "codex": [
        "codex",
        "exec",
        "--sandbox",
        "workspace-write",
        "--skip-git-repo-check",
        "--ephemeral",
        "-c",
        'web_search="live"',
        "-",
    ],
}

# What replaces the web-tool arguments above when research is off (transcript-only notes).
_NO_RESEARCH: dict[str, dict[str, list[str]]] = {
    "pi": {},  # nothing to turn off: pi's web tools are the user's own extensions
    "claude": {"--allowedTools=WebSearch,WebFetch": ["--disallowedTools=WebSearch,WebFetch"]},
    "codex": {'web_search="live"': ['web_search="disabled"']},
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
    """argv for `tool`: `settings.<tool>_command` when set, else DEFAULT_COMMANDS[tool]
    (with the web tools turned off when `settings.research` is false)."""
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
    command = list(DEFAULT_COMMANDS[tool])
    if settings is not None and not getattr(settings, "research", True):
        swaps = _NO_RESEARCH[tool]
        command = [new for arg in command for new in swaps.get(arg, [arg])]
    return command


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
    try:
        finished = run_supervised(
            command, cwd=cwd, output_path=output_path, timeout_s=timeout_s, env=child_env,
            executable=executable, stdin_data=prompt.encode("utf-8"), cancel_file=cancel_file,
            pid_file=pid_file, label=tool, grace_s=grace_s, redact=redact, on_output=on_output,
        )
    except StartError as err:
        raise PermanentError(f"agent {tool!r} cannot start ({command[0]}): {err.strerror}") from None
    redact_file(output_path, redact)
    return AgentResult(
        tool=tool,
        argv=shown_argv,
        returncode=finished.returncode,
        timed_out=finished.timed_out,
        cancelled=finished.cancelled,
        duration_s=finished.duration_s,
        output_path=output_path,
        tail=read_tail(output_path, redact, TAIL_CHARS),
    )
