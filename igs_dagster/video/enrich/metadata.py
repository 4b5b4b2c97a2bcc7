"""Builtin sections from the video's metadata: speaker context and related links.

Metadata (yt-dlp info) wins over the note's frontmatter; nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from igs_dagster.core.inert import inert
from igs_dagster.video.enrich.noteedit import stamp_md
from igs_dagster.video.enrich.text import Sentence, shorten

_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+")


def meta_value(meta: dict, fm: dict, *keys: str) -> str | None:
    for source in (meta, fm):
        for key in keys:
            value = source.get(key)
            if value not in (None, ""):
                return str(value).strip()
    return None


def _published(meta: dict, fm: dict) -> str | None:
    upload = str(meta.get("upload_date") or "")
    if re.fullmatch(r"\d{8}", upload):
        return f"{upload[:4]}-{upload[4:6]}-{upload[6:]}"
    value = fm.get("published")
    return str(value) if value else None


def speaker_context(
    meta: dict,
    fm: dict,
    sentences: list[Sentence],
    timestamp_url: Callable[[int], str | None],
) -> list[str]:
    lines: list[str] = []
    channel = meta_value(meta, fm, "channel")
    uploader = meta_value(meta, {}, "uploader")
    channel_url = _http_url(meta.get("channel_url") or meta.get("uploader_url"))
    if channel:
        lines.append(
            f"- **Channel:** [{inert(channel, 'link_label')}]({channel_url})"
            if channel_url
            else f"- **Channel:** {inert(channel, 'item')}"
        )
    if uploader and uploader != channel:
        lines.append(f"- **Uploader:** {inert(uploader, 'item')}")
    published = _published(meta, fm)
    if published:
        lines.append(f"- **Published:** {inert(published, 'item')}")
    platform = meta_value(meta, fm, "extractor", "source")
    if platform:
        lines.append(f"- **Platform:** {inert(_PLATFORMS.get(platform.lower(), platform), 'item')}")
    duration = meta_value({}, fm, "duration")
    if duration:
        lines.append(f"- **Duration:** {inert(duration, 'item')}")
    description = str(meta.get("description") or "").strip()
    if description:
        first = _URL.sub("", re.split(r"\n\s*\n", description)[0])
        first = inert(shorten(first, 80), "callout")
        if first:
            lines += ["", "From the description:", "", f"> {first}"]
    # chapters are the note's own list above the transcript (notes.render_note)
    named = next((s for s in sentences if re.search(r"\bmy name is\b", s.text, re.I)), None)
    if named:
        stamp = stamp_md(named.start, timestamp_url)
        where = f" at {stamp}" if stamp else ""
        lines += ["", f'The speaker introduces themselves{where}: "{inert(named.text, "paragraph")}"']
    elif lines:
        lines += [
            "",
            "_The transcript does not name the speaker; this context comes from the video's "
            "metadata only._",
        ]
    else:
        lines.append(
            "_Little is known: no channel, uploader or description metadata is available, "
            "and the transcript does not name the speaker._"
        )
    return lines


_PLATFORMS = {"youtube": "YouTube", "vimeo": "Vimeo", "generic": "web", "text": "pasted text"}


def _http_url(value: Any) -> str | None:
    text = str(value or "").strip()
    return text if re.fullmatch(r"https?://\S+", text) else None


def related_links(meta: dict, fm: dict, title: str) -> list[str]:
    links: list[str] = []
    seen: set[str] = set()

    def add(label: str, url: str | None) -> None:
        if url and url not in seen:
            seen.add(url)
            links.append(f"- [{label}]({url})")

    source_url = _http_url(
        meta.get("source_url") or meta.get("webpage_url") or fm.get("source_url")
    )
    add(f"Source: {inert(title, 'link_label')}", source_url)
    channel = meta_value(meta, fm, "channel")
    add(f"Channel: {inert(channel or 'channel', 'link_label')}", _http_url(meta.get("channel_url")))
    for match in _URL.findall(str(meta.get("description") or "")):
        url = match.rstrip(".,;:!?")
        add(inert(url, "link_label"), url)
        if len(links) >= 20:
            break
    return links or ["_No links are known for this source._"]
