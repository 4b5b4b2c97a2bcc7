"""Reading and editing a note's parts without touching the rest of its bytes.

Frontmatter keys, the enrichment region (between the `## Executive Summary` heading line and
the transcript marker) and its sections; markdown helpers that keep generated text from
breaking that structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.inert import link_target
from igs_dagster.video import notes
from igs_dagster.video.frontmatter import dump_frontmatter, split_frontmatter

SECTIONS = (
    "Executive Summary",
    "Key Points",
    "Speaker Context",
    "Notable Quotes",
    "Related",
    "Tags",
)
TRANSCRIPT_MARKER = notes.TRANSCRIPT_MARKER
SUMMARY_HEADING = notes.SUMMARY_HEADING
PREVIEW_MAX = 1500


def _frontmatter_yaml_bounds(text: str) -> tuple[int, int]:
    """Offsets of the YAML between the frontmatter's `---` lines (as split_frontmatter)."""
    split_frontmatter(text)  # PermanentError when missing or invalid
    close = text.find("\n---\n", 3)
    return 4, (close + 1 if close != -1 else len(text) - 3)


def region_bounds(text: str) -> tuple[int, int]:
    """Offsets of the enrichment region (see notes.enrichment_region)."""
    region = notes.enrichment_region(text)
    if region is None:
        raise PermanentError(
            f"note has no '{SUMMARY_HEADING}' heading followed by the "
            f"'{TRANSCRIPT_MARKER}' marker: cannot enrich it"
        )
    end = len(text) - len(notes.transcript_block(text))
    return end - len(region), end


def _render_key(key: str, value: Any) -> str:
    """`key: value` on one line, collections in flow style (`tags: [video, youtube]`)."""
    flow = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=2**31)
    return f"{key}: {flow.strip()[1:-1]}"


def set_frontmatter(text: str, updates: dict[str, Any]) -> str:
    """Set top-level frontmatter keys, leaving every other line byte-identical."""
    before, _ = split_frontmatter(text)
    start, end = _frontmatter_yaml_bounds(text)
    lines = text[start:end].splitlines(keepends=True)
    for key, value in updates.items():
        rendered = _render_key(key, value) + "\n"
        key_re = re.compile(rf"^{re.escape(key)}[ \t]*:")
        idx = next((i for i, line in enumerate(lines) if key_re.match(line)), None)
        if idx is None:
            lines.append(rendered)
            continue
        stop = idx + 1
        while stop < len(lines) and (
            lines[stop][:1] in (" ", "\t", "-") or not lines[stop].strip()
        ):
            stop += 1
        lines[idx:stop] = [rendered]
    new_text = text[:start] + "".join(lines) + text[end:]
    expected = {**before, **updates}
    try:
        parsed, _ = split_frontmatter(new_text)
    except PermanentError:
        parsed = None
    if parsed != expected:  # unusual layout: re-render the whole block the notes.py way
        _, body = split_frontmatter(text)
        new_text = dump_frontmatter(expected) + body
    return new_text


def read_note(note_path: Path) -> str:
    try:
        return Path(note_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PermanentError(f"note {note_path} does not exist") from None
    except UnicodeDecodeError:
        raise PermanentError(f"note {note_path} is not UTF-8 text") from None


def _head(text: str) -> str:
    """The note before its transcript block."""
    return text[: len(text) - len(notes.transcript_block(text))]


def present_sections(text: str) -> list[str]:
    head = _head(text)
    found = {m.group(1).strip() for m in re.finditer(r"^##[ \t]+(.+?)[ \t]*$", head, re.MULTILINE)}
    return [name for name in SECTIONS if name in found]


def note_section(text: str, name: str) -> str:
    """The body of section `name` above the transcript block ("" when absent)."""
    head = _head(text)
    match = re.search(
        rf"^##[ \t]+{re.escape(name)}[ \t]*$\n(.*?)(?=^##[ \t]|\Z)", head, re.M | re.S
    )
    return match.group(1).strip() if match else ""


def note_preview(text: str) -> str:
    summary = note_section(text, "Executive Summary")
    first_para = summary.split("\n\n", 1)[0].strip() if summary else ""
    bullets = [
        line for line in note_section(text, "Key Points").splitlines() if line.startswith("- ")
    ][:3]
    parts = [p for p in (first_para, "\n".join(bullets)) if p]
    preview = "\n\n".join(parts)
    if len(preview) > PREVIEW_MAX:
        preview = preview[: PREVIEW_MAX - 1].rstrip() + "…"
    return preview


def stamp_md(start: float | None, timestamp_url: Callable[[int], str | None]) -> str | None:
    if start is None:
        return None
    label = notes.format_duration(int(start))
    url = timestamp_url(int(start))
    return f"[{label}]({link_target(url)})" if url else label
