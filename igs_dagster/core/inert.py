"""Keep untrusted text inert: titles, channels, descriptions and file names come from strangers.

Three jobs, one place:

- `clean` (at ingest): drop control and format characters (Unicode Cc, Cf: terminal escapes,
  bidi overrides, zero-width tricks); line and paragraph separators become spaces. `\\n` and
  `\\t` survive only where asked (descriptions).
- `md_inline` (writing notes): one line of Markdown that renders as the literal text in
  Obsidian: no raw HTML, comments, wikilinks, embeds, `%%` comments, tags or links.
- `printable` (human CLI output): anything non-printable shown as an escape (`\\x1b`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_SEPARATORS = {"\u2028", "\u2029", "\x85"}  # line/paragraph separators (Zl, Zp, NEL)


def clean(text: Any, *, keep_newlines: bool = False) -> str:
    """`text` without control/format characters (`\\n`/`\\t` kept when `keep_newlines`)."""
    if text is None:
        return ""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for ch in text:
        if ch in _SEPARATORS:
            out.append("\n" if keep_newlines else " ")
        elif ch in "\n\t":
            out.append(ch if keep_newlines else " ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def clean_line(text: Any) -> str:
    """`clean` on one line, runs of white space collapsed."""
    return " ".join(clean(text).split())


def clean_opt(text: Any, *, keep_newlines: bool = False) -> str | None:
    if text is None:
        return None
    return clean(text, keep_newlines=keep_newlines) if keep_newlines else clean_line(text)


def clean_info(info: dict) -> dict:
    """Clean the free-text fields of a yt-dlp info dict / download result in place."""
    for key in ("title", "channel", "uploader", "fulltitle"):
        if isinstance(info.get(key), str):
            info[key] = clean_line(info[key])
    if isinstance(info.get("description"), str):
        info["description"] = clean(info["description"], keep_newlines=True)
    if isinstance(info.get("chapters"), list):
        for chapter in info["chapters"]:
            if isinstance(chapter, dict) and isinstance(chapter.get("title"), str):
                chapter["title"] = clean_line(chapter["title"])
    if isinstance(info.get("tags"), list):
        info["tags"] = [clean_line(t) for t in info["tags"] if clean_line(t)]
    return info


# Markdown/Obsidian syntax characters escaped with a backslash (CommonMark allows a backslash
# before any ASCII punctuation): HTML and comments (<), links, wikilinks and embeds ([ ] !),
# Obsidian comments (%%), tags (#), code and emphasis, block ids (^), math ($), tables (|).
_MD_SPECIAL = re.compile(r"([\\<>\[\]!%#`*_~=^$|&])")


def md_inline(text: Any) -> str:
    """One line of Markdown that shows `text` literally (cleaned, syntax escaped)."""
    return _MD_SPECIAL.sub(r"\\\1", clean_line(text))


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """For terminals: every non-printable character as a visible escape (`\\x1b`, `\\u202e`);
    `keep_newlines` lets `\\n` and `\\t` through."""
    out: list[str] = []
    for ch in text:
        if ch in "\n\t" and keep_newlines:
            out.append(ch)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
    return "".join(out)


def json_printable(line: str) -> str:
    """A JSON text with every non-printable character left as a `\\uXXXX` escape (JSON's own
    escapes cover C0 only; DEL, C1, bidi and zero-width characters would reach the terminal)."""
    out: list[str] = []
    for ch in line:
        if ch.isprintable() or ch == " ":
            out.append(ch)
            continue
        code = ord(ch)
        if code >= 0x10000:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


class PrintableWriter:
    """A text stream that shows non-printable characters as escapes (`\\n` and `\\t` pass):
    whatever a title or a log line holds, the terminal only ever receives plain text."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text, keep_newlines=True))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer ...
        return getattr(self._stream, name)
