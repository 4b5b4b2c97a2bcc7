"""Keep untrusted text inert: titles, channels, descriptions and file names come from strangers.

Three jobs, one place:

- `clean` (at ingest): drop control and format characters (Unicode Cc, Cf: terminal escapes,
  bidi overrides, zero-width tricks); line and paragraph separators become spaces. `\\n` and
  `\\t` survive only where asked (descriptions).
- `inert` (writing notes): untrusted text made inert for the place it goes in a note (a table
  cell, a list item, a paragraph, a callout line, a frontmatter value, a heading, a link label,
  a transcript line): one line that shows the same words in Obsidian and opens nothing: no
  code block or inline code (Dataview runs ```` ```dataviewjs ```` and `` `$= ` `` as
  JavaScript), math, tag, wiki link, embed, `%%` comment, `==` highlight, HTML, Dataview field
  (`key:: value`), or URL scheme other than http/https.
- `printable` (human CLI output): anything non-printable shown as an escape (`\\x1b`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal, get_args

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


Place = Literal["cell", "item", "paragraph", "callout", "frontmatter", "heading", "link_label",
                "transcript"]
PLACES: tuple[str, ...] = get_args(Place)

# Markdown/Obsidian syntax characters escaped with a backslash (CommonMark allows a backslash
# before any ASCII punctuation, and the text shown is the same): HTML and comments (< >), links,
# wikilinks and embeds ([ ] !), Obsidian comments (%), tags (#), code spans and fences (` ~),
# emphasis (* _), highlights (=), block ids (^), math ($), tables (|), entities (&), e-mail
# autolinks (@), and the backslash itself.
_MD_SPECIAL = frozenset("\\`*_~=^$|&<>[]!%#@")
_SCHEME_BEFORE = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*)$")
_LIST_START = re.compile(r"^([-+])|^(\d{1,9})([.)])")


def _scheme_colon(text: str, i: int) -> bool:
    """Whether the `:` at `text[i]` would make a live URL scheme (`javascript:`, `file://`,
    `obsidian://`) or a Dataview inline field (`key:: value`). http(s):// stays a link."""
    before, after = text[max(0, i - 64) : i], text[i + 1 : i + 3]  # a bounded look back
    if before.endswith(":") or after.startswith(":"):
        return True
    if not after or after[0].isspace():
        return False
    match = _SCHEME_BEFORE.search(before)
    if match is None:
        return False
    return not (match.group(1).lower() in ("http", "https") and after == "//")


def _markdown_line(text: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch in _MD_SPECIAL or (ch == ":" and _scheme_colon(text, i)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    line = "".join(out)
    # a line must not start a list item, a thematic break or a setext heading either
    return _LIST_START.sub(lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}",
                           line, count=1)


_DOUBLED = re.compile(r"([\[\]%=$:~])(?=\1)")
_FM_MAP = str.maketrans({"`": "'", "<": "‹", ">": "›"})


def _frontmatter_value(text: str) -> str:
    """A YAML string shows backslashes as they are, so here markup is broken with spaces (and
    three look-alike characters) instead: Obsidian's properties view links `[[x]]`, and Dataview
    renders field values as Markdown, inline queries included."""
    text = _DOUBLED.sub(r"\1 ", text.translate(_FM_MAP))
    text = re.sub(r"([#$])(?=[^\s#$])", r"\1 ", text)
    out: list[str] = []
    for i, ch in enumerate(text):
        out.append(ch)
        if ch == ":" and _scheme_colon(text, i):
            out.append(" ")
    return "".join(out)


def inert(text: Any, place: Place) -> str:
    """Untrusted `text` as one line that is inert where it goes in a note (see the module doc):
    cleaned (no control characters, white space collapsed); in Markdown places every syntax
    character is backslash-escaped, so Obsidian shows exactly the words and punctuation given;
    in a frontmatter value, markup is broken with spaces instead."""
    if place not in PLACES:
        raise ValueError(f"unknown place {place!r} (one of {', '.join(PLACES)})")
    line = clean_line(text)
    return _frontmatter_value(line) if place == "frontmatter" else _markdown_line(line)


def plain(markdown: Any) -> str:
    """The text a line taken back from a note shows (backslash escapes undone), to pass it
    through `inert` again for another place."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", clean_line(markdown))


_URL_QUOTE = {ch: f"%{ord(ch):02X}" for ch in ' <>`"{}|\\^$'}


def link_target(url: Any) -> str:
    """A Markdown link destination that stays one link: cleaned, characters that end or break
    it (spaces, angle brackets, backticks, quotes, `$`) percent-encoded, `%%`, `==` and `[[`
    split with an escape, and `<...>` around it when it holds parentheses."""
    url = "".join(_URL_QUOTE.get(ch, ch) for ch in clean_line(url))
    url = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", url)  # %% and a stray % never start a comment
    url = url.replace("==", "=%3D").replace("[[", "[%5B").replace("]]", "]%5D")
    return f"<{url}>" if any(ch in url for ch in "()") else url


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
