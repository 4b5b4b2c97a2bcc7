"""The coding loop's intake: `loop.start` checked and queued, `igs loop resume` reopened.

A loop runs the PRD's check commands as code, so its intake is strict: the project and the PRD
must lie under the loop roots (never in the data folder or the vault), over HTTP only with
`IGS_LOOP__API_ENABLED`, and one active loop per project (decided under one lock for CLI and
API processes alike). The router (igs_dagster/intake.py) hands `loop.start` events here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from filelock import FileLock

from igs_dagster.core import pathguard, system_log
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import LoopStart
from igs_dagster.core.inbox import Accepted, EventQueue
from igs_dagster.core.pathguard import Origin
from igs_dagster.core.settings import Settings
from igs_dagster.core.vault import require_vault
from igs_dagster.loop import resume, worktree
from igs_dagster.loop.agent_choice import record as record_agents
from igs_dagster.loop.outcome import check_programs
from igs_dagster.loop.planner import check_overrides, story_kind
from igs_dagster.loop.prd import load_prd
from igs_dagster.loop.state import (
    cancel_path,
    list_loops,
    load_loop,
    loop_dir,
    new_loop,
    new_loop_id,
    save_loop,
)


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
    for other in list_loops(loops_dir):
        if other.status in ("queued", "running") and Path(other.project) == project:
            raise PermanentError(
                f"project {project} already has an active loop {other.loop_id} "
                f"({other.status}); cancel it or wait"
            )


def accept_start(
    event: LoopStart, settings: Settings, queue: EventQueue, origin: Origin = "cli"
) -> Accepted:
    """Validate a coding-loop start now (PRD: file, field and reason; the project is a git
    repository with a commit; tool overrides name real stories/kinds), refuse a second active
    loop on the same project, create the loop's `queued` record and queue the event with the
    loop id as its key. The first run (`loop_start_sensor`) starts the queued record."""
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


def accept_resume(loop_id: str, settings: Settings, queue: EventQueue | None = None) -> Accepted:
    """`igs loop resume ID`: refuse (one line, nothing changed) a loop that is queued, running,
    complete with every story passed, unknown, or cleaned; else reopen its record where it
    stopped (`loop.resume.prepare`) and queue its `loop.start` event again as retry n through
    the inbox (`EventQueue.requeue`, as `igs retry` does for videos): the inbox sensor starts
    run `loop:{id}:resume-{n}:0`. The loop keeps its recorded settings and agent commands."""
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
