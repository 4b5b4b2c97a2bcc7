"""The least an enrichment agent needs: its workspace, the file tools, the web only in research.

The enrichment agent reads untrusted text, so each CLI gets flags that hold even when the model
obeys that text (checked against the real CLIs: pi 0.73.1, claude 2.1.x, codex 0.169.0):

- claude: `--tools` leaves Read, Edit and Write (and WebSearch, WebFetch in research mode): no
  Bash or other code-running tool exists; `--permission-prompts=none` denies whatever would
  need approval, which is any file outside the working folder (the workspace). (Not
  `--restricted`: it would also ignore the user's own settings files, where their provider
  and WebFetch settings live.)
- codex: no shell at all (`--disable shell_tool --disable unified_exec`: it edits with
  apply_patch and gets the note in its prompt), `--sandbox workspace-write` without /tmp and
  $TMPDIR, so a patch outside the workspace is refused.
- pi (no sandbox of its own): `-e pi_fence.ts` takes bash away and blocks every file tool call
  outside the workspace and the skills folder (PI_FENCE_ROOTS), and outside research mode
  leaves only read, edit and write (PI_FENCE_RESEARCH).

The flags are added to the command as run, default or IGS_AGENT__<TOOL>_COMMAND alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

PI_FENCE = Path(__file__).with_name("pi_fence.ts")
CLAUDE_FILE_TOOLS = ("Read", "Edit", "Write")
CLAUDE_WEB_TOOLS = ("WebSearch", "WebFetch")
CODEX_NO_SHELL = ["--disable", "shell_tool", "--disable", "unified_exec",
                  "-c", "sandbox_workspace_write.exclude_slash_tmp=true",
                  "-c", "sandbox_workspace_write.exclude_tmpdir_env_var=true"]
INLINE_NOTE_TOOLS = frozenset({"codex"})  # no tool to read a file with: the note goes in the prompt


def least_privilege(tool: str, argv: Sequence[str], *, research: bool,
                    readable: Sequence[Path]) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) for running `tool` on an enrichment whose workspace (and skill
    folders) are `readable`."""
    argv = list(argv)
    env: dict[str, str] = {}
    if tool == "claude":
        tools = CLAUDE_FILE_TOOLS + (CLAUDE_WEB_TOOLS if research else ())
        argv += ["--permission-prompts=none", f"--tools={','.join(tools)}"]
    elif tool == "codex":
        at = len(argv) - 1 if argv and argv[-1] == "-" else len(argv)
        argv[at:at] = CODEX_NO_SHELL
    elif tool == "pi":
        argv[1:1] = ["-e", str(PI_FENCE)]
        env["PI_FENCE_ROOTS"] = json.dumps([str(Path(p).resolve()) for p in readable])
        env["PI_FENCE_RESEARCH"] = "1" if research else "0"
    return argv, env
