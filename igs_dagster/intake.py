"""Accept an event from `igs send`/`POST /events`: validate it, resolve its partition key,
register its source and queue it. Nothing is written unless the whole event is valid.

The same `partition_key_for` runs in the sensor, so the key is decided in one place.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from igs_dagster.core import system_log
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import (
    ContentSummarize,
    Event,
    LoopStart,
    SystemLog,
    TranscriptProcess,
    VideoDownload,
)
from igs_dagster.core.fsutil import atomic_write_text
from igs_dagster.core.inbox import EventQueue, Source
from igs_dagster.core.settings import Settings
from igs_dagster.video.ids import is_partition_key, parse_source, text_key, youtube_id

MAX_NOTE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Accepted:
    event_id: int | None  # None: handled at once (system.log)
    name: str
    key: str | None
    message: str
    known: bool = False  # the key had been queued before: the sensor starts no second run

    def to_json(self) -> dict:
        return {"event_id": self.event_id, "name": self.name, "key": self.key,
                "message": self.message, "known": self.known}


def source_for(event: Event, settings: Settings) -> Source | None:
    """The partition source an event refers to (no side effects)."""
    if isinstance(event, VideoDownload):
        ref = parse_source(event.data.url)
        return Source(ref.key, ref.kind, ref.location, ref.label, None)
    if isinstance(event, TranscriptProcess):
        data = event.data
        if data.file is not None:
            if not data.file.expanduser().is_absolute():
                raise PermanentError(f"transcript.process file must be an absolute path, got {data.file}")
            ref = parse_source(str(data.file))
            if ref.kind != "file":
                raise PermanentError(f"transcript.process file must be a local file, got {data.file}")
            return Source(ref.key, "file", ref.location, data.source, data.title)
        if not (data.text or "").strip():
            raise PermanentError("transcript.process text is empty")
        key = text_key(data.title, data.text or "")
        stored = settings.data_dir / "inbox" / f"{key}.txt"
        return Source(key, "text", str(stored), data.source, data.title)
    return None


def partition_key_for(event: Event, settings: Settings) -> str | None:
    source = source_for(event, settings)
    return source.key if source else None


def note_video_id(note: Path, settings: Settings, queue: EventQueue | None = None) -> str:
    """The partition key recorded in a vault note's frontmatter (content.summarize).

    The note must be a Markdown file inside the vault (symlinks resolved) whose `video_id` names
    a partition this deployment knows: a queued source, or a YouTube ID.
    """
    from igs_dagster.video.notes import split_frontmatter

    vault = settings.vault_dir.resolve()
    note = Path(note).expanduser()
    path = (note if note.is_absolute() else vault / note).resolve()
    if vault not in path.parents:
        raise PermanentError(f"note {note} is not inside the vault {settings.vault_dir}")
    if not path.exists():
        raise PermanentError(f"note {note} does not exist")
    if not path.is_file() or path.suffix.lower() != ".md":
        raise PermanentError(f"note {note} is not a Markdown (.md) file")
    try:
        if path.stat().st_size > MAX_NOTE_BYTES:
            raise PermanentError(f"note {note} is larger than {MAX_NOTE_BYTES // (1024 * 1024)} MiB")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PermanentError(f"note {note} is not UTF-8 text") from None
    except OSError as err:
        raise PermanentError(f"note {note} cannot be read: {err.strerror or err}") from None
    try:
        meta, _ = split_frontmatter(text)
    except PermanentError as err:
        raise PermanentError(f"note {note}: {err}") from None
    key = meta.get("video_id")
    if not key:
        raise PermanentError(f"note {note} has no video_id in its frontmatter")
    key = str(key)
    if not is_partition_key(key):
        raise PermanentError(f"note {note} has an invalid video_id {key[:80]!r}")
    queue = queue or EventQueue(settings.queue_db)
    if youtube_id(key) != key and (not settings.queue_db.exists() or queue.get_source(key) is None):
        raise PermanentError(f"note {note}: video_id {key!r} was never sent to this deployment")
    return key


def _loops_lock(loops_dir: Path) -> FileLock:
    """One intake at a time decides "is this project free?" (CLI and API processes alike)."""
    loops_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(loops_dir / ".intake.lock")


def accept_loop_start(event: LoopStart, settings: Settings, queue: EventQueue) -> Accepted:
    """Validate a coding-loop start now (PRD: file, field and reason; the project is a git
    repository with a commit; tool overrides name real stories/kinds), refuse a second active
    loop on the same project, create the loop's `queued` record and queue the event with the
    loop id as its key. The first run (`loop_start_sensor`) starts the queued record."""
    from igs_dagster.loop import worktree
    from igs_dagster.loop.agent_choice import record as record_agents
    from igs_dagster.loop.outcome import check_programs
    from igs_dagster.loop.planner import check_overrides, story_kind
    from igs_dagster.loop.prd import load_prd
    from igs_dagster.loop.state import list_loops, loop_dir, new_loop, new_loop_id

    data = event.data
    prd = load_prd(data.prd)
    project = worktree.repo_root(data.project).resolve()
    if worktree.git(project, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode:
        raise PermanentError(f"project {project} has no commits yet: nothing to branch from")
    check_overrides(data.tools, prd)
    check_programs(prd.checks.configured(), project)
    data = data.model_copy(update={"project": project, "prd": data.prd.resolve()})
    with _loops_lock(settings.loops_dir):
        for other in list_loops(settings.loops_dir):
            if other.status in ("queued", "running") and Path(other.project) == project:
                raise PermanentError(
                    f"project {project} already has an active loop {other.loop_id} "
                    f"({other.status}); cancel it or wait"
                )
        state = new_loop(
            settings.loops_dir,
            project=project,
            prd_source=data.prd,
            prd=prd,
            story_kinds={story.id: story_kind(story) for story in prd.stories},
            max_attempts=data.max_attempts,
            max_iterations=data.max_iterations,
            tools=dict(data.tools),
            push=data.push,
            loop_id=new_loop_id(),
        )
        try:
            record_agents(settings.loops_dir, state.loop_id, settings.agent)
            event_id = queue.put(LoopStart(name="loop.start", data=data), key=state.loop_id)
        except BaseException:
            shutil.rmtree(loop_dir(settings.loops_dir, state.loop_id), ignore_errors=True)
            raise
    return Accepted(
        event_id, event.name, state.loop_id,
        f"queued loop {state.loop_id}: {len(prd.stories)} stories of {prd.title!r} in {project} "
        f"(branch {state.branch})",
    )


def accept(event: Event, settings: Settings, queue: EventQueue | None = None) -> Accepted:
    """Validate and queue `event`; raise PermanentError (nothing written) if it's unusable."""
    queue = queue or EventQueue(settings.queue_db)
    if isinstance(event, SystemLog):
        d = event.data
        system_log.write_entry(settings.system_log, d.action, d.tool, d.detail, reason=d.reason)
        return Accepted(None, event.name, None, "logged")
    if isinstance(event, ContentSummarize):
        key = note_video_id(event.data.note, settings, queue)
        event_id = queue.put(event, key=key)
        return Accepted(event_id, event.name, key, f"queued enrichment of {key}")
    if isinstance(event, LoopStart):
        return accept_loop_start(event, settings, queue)
    source = source_for(event, settings)
    assert source is not None
    if source.kind == "text":
        # the text travels by claim check: a file in the data folder, not the queue row
        assert isinstance(event, TranscriptProcess) and event.data.text is not None
        stored = Path(source.location)
        if not stored.exists():
            atomic_write_text(stored, event.data.text)
        event = TranscriptProcess(
            name="transcript.process",
            data=event.data.model_copy(update={"text": f"(stored in {stored.name})"}),
        )
    known = queue.get_source(source.key) is not None
    event_id = queue.put(event, source=source, key=source.key)
    note = " (already known: one run per video)" if known else ""
    return Accepted(event_id, event.name, source.key, f"queued {source.key}{note}", known)
