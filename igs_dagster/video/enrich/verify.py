"""Content checks on an agent's enrichment: quotes are the speaker's words, links are URLs.

An agent (with or without web research) may misquote or write a link it made up badly;
these checks catch what can be checked offline: every Notable Quotes quote occurs in the
transcript (compared with case, whitespace and punctuation normalised) and every link in the
enrichment region is a well-formed http(s) URL. Each returns None or the reason.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from igs_dagster.video import notes

_STAMP = re.compile(r"\*\*\[[^\]]*\]\([^)]*\)\*\*|\*\*\d+(?::\d\d)+\*\*")
_LINK_DEST = re.compile(
    r"\]\(\s*(<[^>\n]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+\"[^\"]*\")?\s*\)"
)
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>")
_BARE_URL = re.compile(r"(?<![(<\w])(?:https?|ftp|file|javascript|data):[^\s)>\]]*", re.I)
_QUOTED = re.compile(r"[\"“”„«»](.+)[\"“”„«»]", re.S)
_ATTRIBUTION = re.compile(r"\s+[—–-]{1,2}\s+\[?\d+(?::\d\d)+.*$", re.S)


def normalise(text: str) -> str:
    """Casefolded words only: punctuation (quotes, dashes, escapes) and spacing removed."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'").replace("'", "")
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def transcript_text(note: str) -> str:
    """The spoken words of the note's transcript block (no marker, heading, stamps)."""
    lines = []
    block = notes.transcript_block(note)
    heading = re.search(r"^## Transcript[ \t]*$", block, re.M)  # after the chapter list, if any
    for line in (block[heading.end():] if heading else block).splitlines():
        line = line.strip()
        if line.startswith(notes.TRANSCRIPT_MARKER) or line.startswith("#"):
            continue
        line = line.lstrip(">").strip()
        if line.startswith("[!"):
            continue
        lines.append(_STAMP.sub(" ", line))
    return " ".join(lines)


def _section(region: str, name: str) -> str:
    match = re.search(
        rf"^##[ \t]+{re.escape(name)}[ \t]*$\n(.*?)(?=^##[ \t]|\Z)", region, re.M | re.S
    )
    return match.group(1) if match else ""


def quotes(region: str) -> list[str]:
    """The quoted words of each blockquote in the Notable Quotes section."""
    found, block = [], []
    for line in [*_section(region, "Notable Quotes").splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith(">") and stripped.lstrip(">").strip():
            block.append(stripped.lstrip(">").strip())
            continue
        if block:
            body = " ".join(block)
            match = _QUOTED.search(body)
            found.append(match.group(1) if match else _ATTRIBUTION.sub("", body))
            block = []
    return [q for q in found if normalise(q)]


def check_quotes(note: str, region: str) -> str | None:
    spoken = f" {normalise(transcript_text(note))} "
    for quote in quotes(region):
        if f" {normalise(quote)} " not in spoken:
            short = " ".join(quote.split())
            short = short if len(short) <= 80 else short[:79] + "…"
            return f"quote not in the transcript: {short!r}"
    return None


def _well_formed(url: str) -> bool:
    if not url or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def links(region: str) -> list[str]:
    """Link destinations in `region`: markdown links, autolinks and bare URLs."""
    found = [m.group(1).strip("<>") for m in _LINK_DEST.finditer(region)]
    found += [m.group(1) for m in _AUTOLINK.finditer(region)]
    found += [m.group(0) for m in _BARE_URL.finditer(_LINK_DEST.sub("](x)", region))]
    return found


def check_links(region: str) -> str | None:
    for url in links(region):
        if not _well_formed(url):
            shown = url if len(url) <= 80 else url[:79] + "…"
            return f"link is not a well-formed http(s) URL: {shown!r}"
    return None
