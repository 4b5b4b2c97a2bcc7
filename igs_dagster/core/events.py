"""Typed events: what `igs send`, `POST /events` and the sensors exchange.

An event is `{"name": ..., "data": {...}}`; the name selects the data model, so a malformed
event is refused before anything is queued.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from igs_dagster.core.errors import PermanentError


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class VideoDownloadData(_Data):
    url: str = Field(min_length=1, max_length=4096)


class TranscriptProcessData(_Data):
    """A local audio/video file or a ready transcript text; skips the download."""

    file: Path | None = None
    text: str | None = Field(None, max_length=5_000_000)
    source: str = Field("manual", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    title: str = Field(min_length=1, max_length=300)

    @model_validator(mode="after")
    def _one_input(self) -> TranscriptProcessData:
        if (self.file is None) == (self.text is None):
            raise ValueError("give exactly one of 'file' or 'text'")
        return self


class ContentSummarizeData(_Data):
    note: Path


class SystemLogData(_Data):
    action: str = Field(min_length=1, max_length=100)
    tool: str = Field(min_length=1, max_length=100)
    detail: str = Field(min_length=1, max_length=4000)
    reason: str | None = Field(None, max_length=4000)


class LoopStartData(_Data):
    project: Path
    prd: Path
    max_attempts: int = Field(3, ge=1, le=20)
    max_iterations: int = Field(50, ge=1, le=1000)
    tools: dict[str, Literal["pi", "claude", "codex"]] = {}
    push: bool = False


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoDownload(_Event):
    name: Literal["video.download"]
    data: VideoDownloadData


class TranscriptProcess(_Event):
    name: Literal["transcript.process"]
    data: TranscriptProcessData


class ContentSummarize(_Event):
    name: Literal["content.summarize"]
    data: ContentSummarizeData


class SystemLog(_Event):
    name: Literal["system.log"]
    data: SystemLogData


class LoopStart(_Event):
    name: Literal["loop.start"]
    data: LoopStartData


Event = Annotated[
    VideoDownload | TranscriptProcess | ContentSummarize | SystemLog | LoopStart,
    Field(discriminator="name"),
]
EVENT_NAMES = ("video.download", "transcript.process", "content.summarize", "system.log", "loop.start")
_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def describe_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if not str(p).startswith("function-"))
    msg = first.get("msg", "invalid").removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def parse_event(raw: object) -> Event:
    """Validate a decoded JSON object as an event; raise PermanentError with one line."""
    if isinstance(raw, dict) and raw.get("name") not in EVENT_NAMES:
        raise PermanentError(
            f"unknown event name {raw.get('name')!r}; expected one of {', '.join(EVENT_NAMES)}"
        )
    try:
        return _adapter.validate_python(raw)
    except ValidationError as err:
        raise PermanentError(f"invalid event: {describe_validation_error(err)}") from None
