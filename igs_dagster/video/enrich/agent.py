"""The agent enricher: an AI agent CLI edits the note, and the edit is checked or undone.

The agent is not trusted: `check_enriched` guards the frontmatter and the transcript block,
and any failure restores the original bytes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import AgentSettings
from igs_dagster.video import noteblocks, notes
from igs_dagster.video.enrich import verify
from igs_dagster.video.enrich.noteedit import (
    SECTIONS,
    SUMMARY_HEADING,
    TRANSCRIPT_MARKER,
    note_preview,
    present_sections,
    read_note,
    region_bounds,
    set_frontmatter,
)
from igs_dagster.video.enrich.result import EnrichResult
from igs_dagster.video.notelock import holding_note_lock

PROMPT_FILE = Path(__file__).with_name("prompt.md")  # a template: $note_path, $sections, ...
MODES_FILE = Path(__file__).with_name("prompt_modes.md")  # its research / transcript-only parts
STYLE_SKILL = "writing-style"  # the style file as a pi skill: <work_dir>/skills/writing-style/
AGENT_LOG_NAME = "agent-output.log"
STYLE_MAX_CHARS = 20_000


def check_enriched(before: str, after: str) -> str | None:
    """None when `after` is an acceptable enrichment of `before`, else the reason."""
    if after == before:
        return "the note is unchanged"
    try:
        old_fm, _ = notes.split_frontmatter(before)
    except PermanentError:
        old_fm = {}
    try:
        new_fm, _ = notes.split_frontmatter(after)
    except PermanentError as err:
        return f"frontmatter broken ({err})"
    missing_keys = [key for key in old_fm if key not in new_fm]
    if missing_keys:
        return f"frontmatter keys removed: {', '.join(map(str, missing_keys))}"
    changed = [
        key
        for key, value in old_fm.items()
        if key not in ("enriched_by", "tags") and new_fm[key] != value
    ]
    if changed:
        return f"frontmatter values changed: {', '.join(map(str, changed))}"
    old_block, new_block = notes.transcript_block(before), notes.transcript_block(after)
    if old_block and not new_block:
        return "transcript block removed"
    if new_block != old_block:
        return "transcript block changed"
    if notes.enrichment_region(after) is None:
        return f"the '{SUMMARY_HEADING}' heading is gone"
    missing = [name for name in SECTIONS if name not in present_sections(after)]
    if missing:
        return f"missing sections: {', '.join(missing)}"
    region = notes.enrichment_region(after) or ""
    return verify.check_quotes(after, region) or verify.check_links(region)


def _mode_texts(research: bool) -> dict[str, str]:
    """The `=== mode: name ===` parts of prompt_modes.md for this mode."""
    mode = "research" if research else "transcript"
    texts: dict[str, str] = {}
    current: str | None = None
    for line in MODES_FILE.read_text(encoding="utf-8").splitlines(keepends=True):
        match = re.match(r"=== (\w+): (\w+) ===\s*$", line)
        if match:
            current = match.group(2) if match.group(1) == mode else None
            if current:
                texts[current] = ""
        elif current:
            texts[current] += line
    return {key: value.rstrip("\n") for key, value in texts.items()}


def read_style(settings: AgentSettings) -> tuple[Path, str] | None:
    """(path, content) of the user's writing-style file, or None when unset or empty."""
    if settings.style_file is None:
        return None
    style_path = Path(settings.style_file).expanduser()
    try:
        content = style_path.read_text(encoding="utf-8")
    except OSError as err:
        raise PermanentError(f"cannot read agent style_file {style_path}: {err.strerror}") from None
    content = content.strip()[:STYLE_MAX_CHARS]
    return (style_path, content) if content else None


def write_style_skill(work_dir: Path, style_path: Path, content: str) -> Path:
    """The style file as an Agent Skills folder (SKILL.md with name + description) for pi."""
    folder = Path(work_dir) / "skills" / STYLE_SKILL
    folder.mkdir(parents=True, exist_ok=True)
    skill = (
        f"---\nname: {STYLE_SKILL}\ndescription: The user's writing style (from "
        f"{style_path.name}). Read it before writing any note text and follow it.\n---\n\n"
        f"{content}\n"
    )
    fsutil.atomic_write_text(folder / "SKILL.md", skill)
    return folder


def build_prompt(
    note_path: Path,
    tool: str,
    settings: AgentSettings,
    *,
    transcript_path: Path | None = None,
    style_as_skill: bool = False,
    vault_context: str = "",
) -> str:
    """The agent prompt from `prompt.md` for this note (research or transcript-only mode).

    The writing-style file is appended, or with `style_as_skill` only named: the caller
    hands it to the CLI as the `writing-style` skill. `vault_context` (related notes already
    in the vault, search/related.py) is appended as it is.
    """
    template = Template(PROMPT_FILE.read_text(encoding="utf-8"))
    style = ""
    found = read_style(settings)
    if found is not None and style_as_skill:
        style = (
            f"## Writing style\n\nWrite the sections following the user's style guide: the "
            f"`{STYLE_SKILL}` skill. Read its SKILL.md before you write.\n"
        )
    elif found is not None:
        style_path, content = found
        style = (
            "## Writing style\n\nWrite the sections following this style guide "
            f"(from {style_path.name}):\n\n<style>\n{content}\n</style>\n"
        )
    transcript_line = (
        f"- Transcript with segment times (JSON, read-only): `{Path(transcript_path).resolve()}`"
        if transcript_path
        else "- The transcript is in the note itself, below the marker."
    )
    prompt = template.substitute(
        note_path=str(Path(note_path).resolve()),
        note_name=Path(note_path).name,
        tool=tool,
        transcript_line=transcript_line,
        sections="\n".join(f"## {name}" for name in SECTIONS),
        marker=TRANSCRIPT_MARKER,
        style=style,
        **_mode_texts(settings.research),
    )
    return prompt + ("\n" + vault_context if vault_context else "")


def _restore(note_path: Path, original: bytes) -> None:
    try:
        current = note_path.read_bytes()
    except OSError:
        current = None
    if current != original:
        fsutil.atomic_write_bytes(note_path, original)


def _last_line(tail: str | None) -> str:
    lines = [line.strip() for line in (tail or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _secret_in(text: str) -> str | None:
    """A reason when the agent wrote a known secret (by value) into the note, else None."""
    from igs_dagster.core.redact import redactor

    redact = redactor()
    if redact and redact.contains_secret(text.encode("utf-8")):
        names = sorted(set(re.findall(r"\[REDACTED:([^\]]+)\]", redact(text))))
        return f"the note contains a secret ({', '.join(names)})"
    return None


@holding_note_lock
def agent_enrich(
    note_path: Path,
    tool: str,
    settings: AgentSettings,
    *,
    work_dir: Path,
    transcript_path: Path | None = None,
    argv: list[str] | None = None,
    pid_file: Path | None = None,
    cancel_file: Path | None = None,
    on_output: Callable[[str], None] | None = None,
    vault_context: str = "",
) -> EnrichResult:
    """Let an agent CLI edit the note in place; keep the edit only if `check_enriched` passes.

    The agent runs in the note's folder with the prompt on stdin; its output goes to
    `work_dir/agent-output.log`. `pid_file`, `cancel_file` and `on_output` are passed to
    `agent_runner.run_agent`. Rejected edits: the original bytes are restored and
    PermanentError is raised. Timeouts, cancellation and non-zero exits restore the note and
    raise RuntimeError (transient, retried).

    The note's lock (video/notelock.py) is held for the whole run: the agent edits the file in
    place, and no other writer's update may land in between and be lost to a restore.
    """
    from igs_dagster.core import agent_runner

    started = time.monotonic()
    note_path = Path(note_path)
    original = note_path.read_bytes() if note_path.is_file() else None
    if original is None:
        raise PermanentError(f"note {note_path} does not exist")
    before = read_note(note_path)
    region_bounds(before)  # refuse notes without the expected structure up front
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    command = list(argv) if argv else agent_runner.agent_command(tool, settings)
    # pi takes skills (`--skill <folder>`): the style file goes as one; the others get it inline
    style = read_style(settings)
    as_skill = style is not None and Path(command[0]).name == "pi"
    if as_skill and style is not None:
        command += ["--skill", str(write_style_skill(work_dir, *style))]
    prompt = build_prompt(
        note_path, tool, settings, transcript_path=transcript_path, style_as_skill=as_skill,
        vault_context=vault_context,
    )

    try:
        result = agent_runner.run_agent(
            tool,
            prompt,
            note_path.resolve().parent,
            work_dir / AGENT_LOG_NAME,
            timeout_s=settings.timeout_s,
            argv=command,
            pid_file=pid_file,
            cancel_file=cancel_file,
            on_output=on_output,
        )
    except BaseException:
        _restore(note_path, original)
        raise
    if result.timed_out or getattr(result, "cancelled", False) or not result.ok:
        _restore(note_path, original)
        if result.timed_out:
            what = f"timed out after {settings.timeout_s:g}s"
        elif getattr(result, "cancelled", False):
            what = "was cancelled"
        else:
            what = f"exited with code {result.returncode}"
        raise RuntimeError(f"agent {tool} {what}: {_last_line(result.tail)}; note restored")

    try:
        after = note_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        after = None
        reason = f"the note is unreadable ({type(err).__name__})"
    else:
        reason = check_enriched(before, after) or _secret_in(after)
    if reason is not None or after is None:
        _restore(note_path, original)
        raise PermanentError(f"agent {tool} enrichment rejected: {reason}; note restored")

    fm, _ = notes.split_frontmatter(after)
    kept = noteblocks.keep_blocks(before, after)  # blocks other steps own, as they were
    if fm.get("enriched_by") != tool:
        kept = set_frontmatter(kept, {"enriched_by": tool})
    if kept != after:
        after = kept
        fsutil.atomic_write_text(note_path, after)
    return EnrichResult(
        enricher=tool,
        method=f"agent: {tool}",
        duration_s=time.monotonic() - started,
        note_path=note_path,
        preview=note_preview(after),
        sections=present_sections(after),
    )
