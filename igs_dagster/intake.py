"""Accept an event from `igs send`/`POST /events`: validate it, resolve its partition key,
register its source and queue it. Nothing is written unless the whole event is valid.

The same `partition_key_for` runs in the sensor, so the key is decided in one place.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from filelock import FileLock

from igs_dagster.core import fsutil, netguard, pathguard, system_log
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
from igs_dagster.core.pathguard import Origin
from igs_dagster.core.settings import Settings
from igs_dagster.core.vault import require_vault
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


def source_for(event: Event, settings: Settings, origin: Origin = "cli") -> Source | None:
    """The partition source an event refers to (no side effects). A local file must lie under
    the media folders for `origin` (core/pathguard: none over HTTP until configured)."""
    fence = pathguard.media_fence(settings, origin)
    if isinstance(event, VideoDownload):
        ref = parse_source(event.data.url, fence)
        if ref.kind == "url":  # a blocked address in any notation, before any request
            netguard.check_url_host(urlsplit(ref.location).hostname or "",
                                    netguard.policy_from_settings(settings))
        return Source(ref.key, ref.kind, ref.location, ref.label, None)
    if isinstance(event, TranscriptProcess):
        data = event.data
        if data.file is not None:
            if not data.file.expanduser().is_absolute():
                raise PermanentError(f"transcript.process file must be an absolute path, got {data.file}")
            ref = parse_source(str(data.file), fence)
            if ref.kind != "file":
                raise PermanentError(f"transcript.process file must be a local file, got {data.file}")
            return Source(ref.key, "file", ref.location, data.source, data.title)
        if not (data.text or "").strip():
            raise PermanentError("transcript.process text is empty")
        key = text_key(data.title, data.text or "")
        stored = settings.data_dir / "inbox" / f"{key}.txt"
        return Source(key, "text", str(stored), data.source, data.title)
    return None


def partition_key_for(event: Event, settings: Settings, origin: Origin = "cli") -> str | None:
    source = source_for(event, settings, origin)
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
    if path.suffix.lower() != ".md":
        raise PermanentError(f"note {note} is not a Markdown (.md) file")
    # no blocking on a FIFO, no reading /dev/zero, one line whether or not it exists
    data = fsutil.read_regular_file(path, MAX_NOTE_BYTES, f"note {note}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PermanentError(f"note {note} is not UTF-8 text") from None
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


def loop_roots(settings: Settings, origin: Origin) -> list[Path]:
    """Folders a loop's project and PRD must be under: the configured roots; from the CLI,
    the user's home folder when none are configured; over HTTP, none then."""
    return pathguard.roots_for(settings.loop.roots, origin)


def loop_path(path: Path, settings: Settings, origin: Origin, what: str) -> Path:
    """`path` resolved (symlinks followed) if it lies under a loop root and outside the data
    folder and the vault (the API writes there); else one line that says nothing about
    whether the path exists."""
    given = Path(path).expanduser()
    if not given.is_absolute():
        if origin == "api":
            raise PermanentError(f"loop.start {what} must be an absolute path")
        given = given.absolute()
    roots = loop_roots(settings, origin)
    return pathguard.fenced(
        given, roots,
        f"loop.start {what} is not under the loop roots ({pathguard.where(roots)}; "
        "IGS_LOOP__ROOTS), or lies in the data folder or the vault",
        forbidden=(settings.data_dir, settings.vault_dir),
    )


def _refuse_busy_project(loops_dir: Path, project: Path) -> None:
    """One active loop per project (call it holding `_loops_lock`)."""
    from igs_dagster.loop.state import list_loops

    for other in list_loops(loops_dir):
        if other.status in ("queued", "running") and Path(other.project) == project:
            raise PermanentError(
                f"project {project} already has an active loop {other.loop_id} "
                f"({other.status}); cancel it or wait"
            )


def accept_loop_start(
    event: LoopStart, settings: Settings, queue: EventQueue, origin: Origin = "cli"
) -> Accepted:
    """Validate a coding-loop start now (PRD: file, field and reason; the project is a git
    repository with a commit; tool overrides name real stories/kinds), refuse a second active
    loop on the same project, create the loop's `queued` record and queue the event with the
    loop id as its key. The first run (`loop_start_sensor`) starts the queued record.

    A loop runs the PRD's check commands as code: over HTTP only with `IGS_LOOP__API_ENABLED`,
    and the project and PRD must be under the loop roots (`loop_path`)."""
    from igs_dagster.loop import worktree
    from igs_dagster.loop.agent_choice import record as record_agents
    from igs_dagster.loop.outcome import check_programs
    from igs_dagster.loop.planner import check_overrides, story_kind
    from igs_dagster.loop.prd import load_prd
    from igs_dagster.loop.state import loop_dir, new_loop, new_loop_id

    if origin == "api" and not settings.loop.api_enabled:
        raise PermanentError(
            "loop.start is disabled over HTTP (it runs the PRD's commands as code); "
            "enable it with IGS_LOOP__API_ENABLED=true"
        )
    data = event.data
    prd_path = loop_path(data.prd, settings, origin, "prd")
    project_path = loop_path(data.project, settings, origin, "project")
    prd = load_prd(prd_path, settings.loop.max_prd_bytes)
    if not project_path.is_dir():
        raise PermanentError("loop.start project is not a folder under the loop roots")
    project = loop_path(worktree.repo_root(project_path).resolve(), settings, origin, "project")
    if worktree.git(project, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode:
        raise PermanentError(f"project {project} has no commits yet: nothing to branch from")
    check_overrides(data.tools, prd)
    check_programs(prd.checks.configured(), project)
    data = data.model_copy(update={"project": project, "prd": prd_path})
    with _loops_lock(settings.loops_dir):
        _refuse_busy_project(settings.loops_dir, project)
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


def accept_loop_resume(loop_id: str, settings: Settings, queue: EventQueue | None = None
                       ) -> Accepted:
    """`igs loop resume ID`: refuse (one line, nothing changed) a loop that is queued, running,
    complete with every story passed, unknown, or cleaned; else reopen its record where it
    stopped (`loop.resume.prepare`) and queue its `loop.start` event again as retry n through
    the inbox (`EventQueue.requeue`, as `igs retry` does for videos): the inbox sensor starts
    run `loop:{id}:resume-{n}:0`. The loop keeps its recorded settings and agent commands."""
    from igs_dagster.loop import resume
    from igs_dagster.loop.state import cancel_path, load_loop, save_loop

    queue = queue or EventQueue(settings.queue_db)
    with _loops_lock(settings.loops_dir):
        state = load_loop(settings.loops_dir, loop_id)
        before = state.model_copy(deep=True)
        reason = resume.refusal(state)
        if reason:
            raise PermanentError(reason)
        _refuse_busy_project(settings.loops_dir, Path(state.project))
        number = state.resume + 1
        resume.prepare(state, number)
        cancel_path(settings.loops_dir, loop_id).unlink(missing_ok=True)
        save_loop(settings.loops_dir, state)  # queued before the event: the sensor starts it
        try:
            requeued = queue.requeue(loop_id, ("loop.start",))
            if requeued is None:
                raise PermanentError(f"loop {loop_id} was never queued in {settings.queue_db}")
        except BaseException:
            before.version = state.version  # the record as it was, saved over our own save
            save_loop(settings.loops_dir, before)
            raise
        event_id, n = requeued
        if n != number:  # the inbox numbers the retries of a key: its number is the run key's
            state.resumes[-1].number = n
            save_loop(settings.loops_dir, state)
    last = state.resumes[-1]
    passed = sum(r.status == "passed" for r in state.stories.values())
    where = f"story {last.story}" if last.story else f"step {last.next_step}"
    if last.next_step not in ("plan", None) and last.story:
        where = f"story {last.story} attempt {state.current_attempt} ({last.next_step})"
    message = (f"resumed loop {loop_id} (resume {n}, was {last.was}): from {where}; "
               f"{passed} of {len(state.stories)} stories passed and kept "
               f"(branch {state.branch})")
    require_vault(settings.vault_dir, settings.data_dir)
    system_log.write_entry(
        settings.system_log, "loop.resume", "loop", message, reason=last.reason,
        dedupe_key=f"loop:{loop_id}:resume-{n}",
    )
    return Accepted(event_id, "loop.resume", loop_id, message)


def accept(
    event: Event, settings: Settings, queue: EventQueue | None = None, origin: Origin = "cli"
) -> Accepted:
    """Validate and queue `event`; raise PermanentError (nothing written) if it's unusable.

    `origin`: "api" for `POST /events` (stricter: no loops unless enabled, absolute paths)."""
    queue = queue or EventQueue(settings.queue_db)
    if isinstance(event, SystemLog):
        d = event.data
        system_log.check_entry(d.action, d.tool, d.detail, d.reason)  # refused: nothing written
        require_vault(settings.vault_dir, settings.data_dir)  # the log lives in the vault
        system_log.write_entry(settings.system_log, d.action, d.tool, d.detail, reason=d.reason)
        return Accepted(None, event.name, None, "logged")
    if isinstance(event, ContentSummarize):
        key = note_video_id(event.data.note, settings, queue)
        event_id = queue.put(event, key=key)
        return Accepted(event_id, event.name, key, f"queued enrichment of {key}")
    if isinstance(event, LoopStart):
        return accept_loop_start(event, settings, queue, origin)
    source = source_for(event, settings, origin)
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



def read_playlist(url: str, *, limit: int | None = None):
    """A playlist, channel or feed URL -> its entries (yt-dlp flat extraction: nothing is
    downloaded). Nothing is written."""
    from igs_dagster.video import feeds

    if limit is not None and limit < 1:
        raise PermanentError("--limit must be at least 1")
    if not url.strip().lower().startswith(("http://", "https://")):
        raise PermanentError(f"invalid playlist URL {url[:80]!r}: use http or https")
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        raise PermanentError(f"invalid playlist URL {url[:80]!r}") from None
    netguard.check_url_host(host, netguard.policy_from_settings())
    return feeds.read_playlist(url.strip(), limit)


def accept_entries(entries, settings: Settings, *, dry_run: bool = False,
                   queue: EventQueue | None = None):
    """Queue one `video.download` per entry, in order, in one transaction; entries whose key
    is already known are not queued again. Returns [feeds.Queued] (event_id None = known)."""
    from igs_dagster.video import feeds

    queue = queue or EventQueue(settings.queue_db)
    if dry_run:
        return feeds.plan_entries(entries, queue)
    return feeds.queue_entries(entries, queue, settings.data_dir)
