"""The loop record: one JSON file per loop, `loops_dir/{loop_id}/loop.json`, written atomically.

Folder layout of a loop::

    loops_dir/{loop_id}/loop.json      the record (this module)
    loops_dir/{loop_id}/loop.json.lock the record's lock: every save holds it
    loops_dir/{loop_id}/prd.json       the loop's copy of the PRD (`passes` is marked here)
    loops_dir/{loop_id}/CANCEL         cancel flag: every role refuses to start once it exists
    loops_dir/{loop_id}/agent.pid      process group of the agent running now (for cancel)
    loops_dir/{loop_id}/worktree/      git worktree on branch agent-loop/{loop_id}
    loops_dir/{loop_id}/stories/{story_id}/attempt-{n}/   prompts, agent output, check logs,
                                                           judge feedback

Several processes write one record: the role running in a loop run, `igs loop cancel`, the
sensor that marks a loop failed, `igs loop resume`. A role holds its copy for minutes (agents,
checks), so each save is a compare-and-swap on the record's `version` under the record's lock:
a copy that is no longer the newest is refused (`LoopRecordChanged`; `LoopCancelled` when the
record was cancelled meanwhile) instead of writing `running` over `cancelled`. Control writers
that must win change the newest record under the lock (`update_loop`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from filelock import FileLock
from pydantic import BaseModel, Field, ValidationError

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import atomic_write_json, atomic_write_text, inside, safe_name
from igs_dagster.loop.checks import CheckResult
from igs_dagster.loop.prd import Prd, save_prd

LoopStatus = Literal["queued", "running", "complete", "cancelled", "failed"]
StoryStatus = Literal["pending", "passed", "failed", "skipped"]
Verdict = Literal["PASS", "FAIL"]
TERMINAL: tuple[str, ...] = ("complete", "cancelled", "failed")
BRANCH_PREFIX = "agent-loop/"


class LoopCancelled(PermanentError):
    """The loop's cancel flag is set: the role did not start (or stopped its agent)."""


class LoopRecordChanged(RuntimeError):
    """Another writer saved the record since this copy was read (transient: a retried role
    reads it again)."""


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AgentRun(BaseModel):
    """One agent CLI run (implementor or reviewer)."""

    tool: str
    argv: list[str] = []
    returncode: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    duration_s: float = 0.0
    prompt_path: str | None = None
    output_path: str | None = None
    tail: str = ""


class Attempt(BaseModel):
    number: int
    tool: str
    tool_reason: str = ""
    reviewer_tool: str | None = None
    reviewer_reason: str = ""
    stage: Literal["implement", "review", "judge", "done"] = "implement"
    base_sha: str | None = None  # worktree HEAD before the implementor ran
    implement: AgentRun | None = None
    review: AgentRun | None = None
    commits: list[str] = []  # implementor commits (its own and/or ours)
    review_base: str | None = None  # worktree HEAD before the reviewer ran
    test_commit: str | None = None
    checks: list[CheckResult] = []
    verdict: Verdict | None = None
    error: str | None = None  # the implementor failed (timeout, exit code, not found)
    feedback_path: str | None = None
    durations: dict[str, float] = {}  # seconds per role: implement, review, checks, judge
    notes: list[str] = []  # e.g. reused an earlier run's commit, reviewer edits discarded
    started_at: str = Field(default_factory=utc_now)
    finished_at: str | None = None

    @property
    def total_duration_s(self) -> float:
        return round(sum(self.durations.values()), 3)


class StoryRecord(BaseModel):
    id: str
    title: str
    kind: str
    priority: int
    status: StoryStatus = "pending"
    attempts: list[Attempt] = []
    base_sha: str | None = None  # worktree HEAD before the first attempt
    parked_branch: str | None = None  # where a skipped story's commits were kept
    rechecked: bool = False
    attempts_before: int = 0  # attempts before the loop's last resume: max_attempts counts on
    passed_by: Literal["judge", "recheck"] | None = None
    note: str = ""

    def attempt(self, number: int) -> Attempt:
        for item in self.attempts:
            if item.number == number:
                return item
        raise PermanentError(f"story {self.id}: no attempt {number}")


class Resume(BaseModel):
    """One `igs loop resume`: its number (the run keys' `resume-<n>`) and what it resumed."""

    number: int
    at: str = Field(default_factory=utc_now)
    was: str  # failed, incomplete or cancelled
    reason: str | None = None
    next_step: str | None = None
    story: str | None = None  # the first story that had not passed


class LoopState(BaseModel):
    loop_id: str
    version: int = 0  # +1 per save: a save of an older copy is refused (module doc)
    status: LoopStatus = "queued"
    project: str
    worktree: str
    branch: str
    prd_source: str
    prd: str  # the loop's own copy
    max_attempts: int = 3
    max_iterations: int = 50
    tools: dict[str, str] = {}
    push: bool = False
    remote: str = "origin"
    stories: dict[str, StoryRecord] = {}
    current_story: str | None = None
    current_attempt: int | None = None
    iterations_used: int = 0
    iterations_base: int = 0  # iterations_used at the last resume: max_iterations counts on
    resumes: list[Resume] = []
    next_step: str | None = "plan"
    stop_reason: str | None = None
    error: str | None = None
    base_sha: str | None = None
    head_sha: str | None = None
    pushed: bool = False
    summary_note: str | None = None
    retro_note: str | None = None
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def resume(self) -> int:
        """The number of the loop's last resume (0: never resumed)."""
        return self.resumes[-1].number if self.resumes else 0

    def out_of_iterations(self) -> bool:
        return self.iterations_used - self.iterations_base >= self.max_iterations

    def story(self, story_id: str) -> StoryRecord:
        try:
            return self.stories[story_id]
        except KeyError:
            raise PermanentError(f"loop {self.loop_id}: no story {story_id!r}") from None

    def current(self) -> tuple[StoryRecord, Attempt]:
        if self.current_story is None or self.current_attempt is None:
            raise PermanentError(f"loop {self.loop_id}: no story in progress (run plan first)")
        record = self.story(self.current_story)
        return record, record.attempt(self.current_attempt)


# ---- paths --------------------------------------------------------------------------------


def loop_dir(loops_dir: Path, loop_id: str) -> Path:
    return inside(Path(loops_dir), safe_name(loop_id, "loop id"))


def state_path(loops_dir: Path, loop_id: str) -> Path:
    return loop_dir(loops_dir, loop_id) / "loop.json"


def cancel_path(loops_dir: Path, loop_id: str) -> Path:
    return loop_dir(loops_dir, loop_id) / "CANCEL"


def pid_path(loops_dir: Path, loop_id: str) -> Path:
    return loop_dir(loops_dir, loop_id) / "agent.pid"


def attempt_dir(loops_dir: Path, loop_id: str, story_id: str, attempt: int) -> Path:
    return inside(
        loop_dir(loops_dir, loop_id),
        "stories",
        safe_name(story_id, "story id"),
        f"attempt-{attempt}",
    )


def new_loop_id(now: datetime | None = None) -> str:
    """`loop-20250101-120000-a1b2`: sortable, file-name safe, unique enough per second."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"loop-{stamp}-{secrets.token_hex(2)}"


# ---- API ----------------------------------------------------------------------------------


def new_loop(
    loops_dir: Path,
    *,
    project: Path,
    prd_source: Path,
    prd: Prd,
    story_kinds: dict[str, str],
    max_attempts: int = 3,
    max_iterations: int = 50,
    tools: dict[str, str] | None = None,
    push: bool = False,
    loop_id: str | None = None,
) -> LoopState:
    """Create the loop folder, its PRD copy and a `queued` record; refuse an existing id."""
    loop_id = safe_name(loop_id or new_loop_id(), "loop id")
    folder = loop_dir(loops_dir, loop_id)
    if (folder / "loop.json").exists():
        raise PermanentError(f"loop {loop_id} already exists")
    folder.mkdir(parents=True, exist_ok=True)
    prd_copy = save_prd(folder / "prd.json", prd)
    state = LoopState(
        loop_id=loop_id,
        project=str(Path(project).resolve()),
        worktree=str(folder / "worktree"),
        branch=f"{BRANCH_PREFIX}{loop_id}",
        prd_source=str(Path(prd_source).resolve()),
        prd=str(prd_copy),
        max_attempts=max_attempts,
        max_iterations=max_iterations,
        tools=dict(tools or {}),
        push=push,
        stories={
            story.id: StoryRecord(
                id=story.id,
                title=story.title,
                kind=story_kinds.get(story.id, "code"),
                priority=story.priority,
                status="passed" if story.passes else "pending",
                note="marked passed in the PRD before the loop" if story.passes else "",
            )
            for story in prd.stories
        },
    )
    return save_loop(loops_dir, state)


def load_loop(loops_dir: Path, loop_id: str) -> LoopState:
    path = state_path(loops_dir, loop_id)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PermanentError(f"no loop {loop_id!r} in {loops_dir}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise PermanentError(f"loop {loop_id}: unreadable record {path}: {err}") from None
    try:
        return LoopState.model_validate(raw)
    except ValidationError as err:
        raise PermanentError(
            f"loop {loop_id}: invalid record {path}: {err.errors()[0]['msg']}"
        ) from None


def _record_lock(loops_dir: Path, loop_id: str) -> FileLock:
    return FileLock(loop_dir(loops_dir, loop_id) / "loop.json.lock")


def _save_newest(loops_dir: Path, state: LoopState) -> LoopState:
    """Write `state` if it is the newest copy (call holding the record's lock)."""
    path = state_path(loops_dir, state.loop_id)
    on_disk = load_loop(loops_dir, state.loop_id) if path.exists() else None
    if on_disk is not None and on_disk.version != state.version:
        if on_disk.status == "cancelled":
            raise LoopCancelled(f"loop {state.loop_id} was cancelled meanwhile: {on_disk.stop_reason}")
        if on_disk.status == "failed":
            raise PermanentError(f"loop {state.loop_id} was marked failed meanwhile: {on_disk.error}")
        raise LoopRecordChanged(f"loop {state.loop_id}: its record changed since it was read "
                                f"(version {state.version}, now {on_disk.version})")
    updated = utc_now()
    data = state.model_dump(mode="json") | {"version": state.version + 1, "updated_at": updated}
    atomic_write_json(path, data)
    state.version, state.updated_at = data["version"], updated
    return state


def save_loop(loops_dir: Path, state: LoopState) -> LoopState:
    """Save the record, unless another writer saved a newer one since `state` was read:
    LoopCancelled (it was cancelled), PermanentError (marked failed), else LoopRecordChanged."""
    with _record_lock(loops_dir, state.loop_id):
        return _save_newest(loops_dir, state)


def update_loop(loops_dir: Path, loop_id: str, change: Callable[[LoopState], bool | None]) -> LoopState:
    """Read the newest record, `change` it, save it, all under the record's lock (for writers
    that must not lose to a role's save: cancel, fail, resume). `change` returning False: no
    save. Returns the record as it is now."""
    with _record_lock(loops_dir, loop_id):
        state = load_loop(loops_dir, loop_id)
        if change(state) is not False:
            _save_newest(loops_dir, state)
        return state


def list_loops(loops_dir: Path) -> list[LoopState]:
    """Every readable loop record, oldest first (unreadable folders are left out)."""
    loops_dir = Path(loops_dir)
    found: list[LoopState] = []
    if not loops_dir.is_dir():
        return found
    for entry in sorted(loops_dir.iterdir()):
        if entry.is_dir() and (entry / "loop.json").is_file():
            try:
                found.append(load_loop(loops_dir, entry.name))
            except PermanentError:
                continue
    return sorted(found, key=lambda s: (s.created_at, s.loop_id))


def request_cancel(loops_dir: Path, loop_id: str, reason: str = "cancelled by user") -> Path:
    """Set the cancel flag (idempotent). Killing a running agent is `control.cancel`'s job."""
    load_loop(loops_dir, loop_id)  # refuse unknown ids
    path = cancel_path(loops_dir, loop_id)
    if not path.exists():
        atomic_write_text(path, f"{utc_now()} {reason}\n")
    return path


def is_cancelled(loops_dir: Path, loop_id: str) -> bool:
    return cancel_path(loops_dir, loop_id).exists()
