"""The daily note's `## Videos` list: one line per video note, `- [[slug]] — title by channel ·
duration`, added once under the note's lock (`link_daily`); the rest of the daily note is kept."""

from __future__ import annotations

import re
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.inert import clean_line, inert
from igs_dagster.video.frontmatter import check_day
from igs_dagster.video.notelock import note_lock
from igs_dagster.video.notes import format_duration

DAILY_DIR = "Daily"


def _daily_path(vault: Path, day: str) -> Path:
    check_day(day)
    fsutil.safe_name(day, "day")
    return fsutil.inside(Path(vault), DAILY_DIR, f"{day}.md")


def _daily_line(slug: str, title: str, channel: str | None, duration: float) -> str:
    # the note's name already says the title when the title is just the slug again
    same = not clean_line(title) or clean_line(title) == slug
    line = f"- [[{slug}]]" + ("" if same else f" — {inert(title, 'item')}")
    if channel and clean_line(channel):
        line += f" by {inert(channel, 'item')}"
    if duration and duration > 0:
        line += f" · {format_duration(duration)}"
    return line


def link_daily(
    vault: Path, day: str, slug: str, title: str, channel: str | None, duration: float
) -> bool:
    """Add `- [[slug]] — title by channel · duration` under `## Videos` in Daily/<day>.md.

    Creates the note (with a `# <day>` header) or the section when missing, keeps everything
    else, and adds the line once: returns True if it added it, False if a list line of the
    note already links `[[slug]]` (text elsewhere, e.g. inside a title, does not count).
    """
    fsutil.safe_name(slug, "note slug")
    path = _daily_path(vault, day)
    line = _daily_line(slug, title, channel, duration)
    with note_lock(path):
        if not path.exists():
            fsutil.atomic_write_text(path, f"# {day}\n\n## Videos\n\n{line}\n")
            return True
        text = path.read_text(encoding="utf-8")
        if re.search(rf"^\s*[-*+] +\[\[{re.escape(slug)}(\|[^\]]*)?\]\]", text, re.MULTILINE):
            return False
        fsutil.atomic_write_text(path, _insert_daily_line(text, line))
        return True


def _insert_daily_line(text: str, line: str) -> str:
    lines = text.split("\n")
    trailing_newline = text.endswith("\n")
    if trailing_newline:
        lines.pop()
    section = next((i for i, value in enumerate(lines) if value.rstrip() == "## Videos"), None)
    if section is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ([""] if lines else []) + ["## Videos", "", line]
        return "\n".join(lines) + "\n"
    end = len(lines)
    for i in range(section + 1, len(lines)):
        if re.match(r"^#{1,2}\s", lines[i]):
            end = i
            break
    insert_at = end
    while insert_at > section + 1 and not lines[insert_at - 1].strip():
        insert_at -= 1
    if insert_at == section + 1:  # empty section: blank lines around the new list
        block = ["", line]
        if insert_at < len(lines) and lines[insert_at].strip():
            block.append("")
        lines[insert_at:insert_at] = block
    else:
        lines.insert(insert_at, line)
    result = "\n".join(lines)
    return result + "\n" if trailing_newline or not result.endswith("\n") else result
