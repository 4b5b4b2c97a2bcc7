"""The playbook: how each agent tool did on each kind of story, merged across loops.

`loops_dir/playbook.json`::

    {"version": 1, "updated_at": "...", "loops": ["loop-...", ...],
     "stats": {"codex": {"code": {"attempts": 4, "passes": 1, "pass_rate": 0.25,
                                  "mean_attempts_to_pass": 2.0, "mean_duration_s": 41.2, ...}}}}

Raw sums are stored next to the derived figures so merging stays exact; a loop is merged
once (its id is listed in `loops`), so a retried retro does not count it twice. The planner
reads it to pick a better tool than a kind's default (`planner.choose_tool`).
"""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from igs_dagster.core.fsutil import atomic_write_json
from igs_dagster.loop.state import LoopState, utc_now

PLAYBOOK_FILE = "playbook.json"


class ToolKindStats(BaseModel):
    attempts: int = 0  # judged attempts by this tool on this kind of story
    passes: int = 0  # of which the judge said PASS
    stories_passed: int = 0  # stories this tool finished (its attempt passed)
    attempts_to_pass_total: int = 0  # sum of the attempt numbers of those passing attempts
    duration_total_s: float = 0.0  # sum of implementor run times
    pass_rate: float = 0.0
    mean_attempts_to_pass: float | None = None
    mean_duration_s: float | None = None

    def add(self, other: ToolKindStats) -> None:
        self.attempts += other.attempts
        self.passes += other.passes
        self.stories_passed += other.stories_passed
        self.attempts_to_pass_total += other.attempts_to_pass_total
        self.duration_total_s = round(self.duration_total_s + other.duration_total_s, 3)
        self.derive()

    def derive(self) -> ToolKindStats:
        self.pass_rate = round(self.passes / self.attempts, 3) if self.attempts else 0.0
        self.mean_attempts_to_pass = (
            round(self.attempts_to_pass_total / self.stories_passed, 2)
            if self.stories_passed
            else None
        )
        self.mean_duration_s = (
            round(self.duration_total_s / self.attempts, 2) if self.attempts else None
        )
        return self


class Playbook(BaseModel):
    version: int = 1
    updated_at: str | None = None
    loops: list[str] = []
    stats: dict[str, dict[str, ToolKindStats]] = {}  # tool -> story kind -> figures

    def get(self, tool: str, kind: str) -> ToolKindStats:
        return self.stats.get(tool, {}).get(kind) or ToolKindStats()

    def merge(self, other: dict[str, dict[str, ToolKindStats]]) -> None:
        for tool, kinds in other.items():
            for kind, figures in kinds.items():
                self.stats.setdefault(tool, {}).setdefault(kind, ToolKindStats()).add(figures)


def playbook_path(loops_dir: Path) -> Path:
    return Path(loops_dir) / PLAYBOOK_FILE


def loop_stats(state: LoopState) -> dict[str, dict[str, ToolKindStats]]:
    """This loop's figures per tool and story kind (judged attempts only)."""
    stats: dict[str, dict[str, ToolKindStats]] = {}
    for record in state.stories.values():
        for attempt in record.attempts:
            if attempt.verdict is None:
                continue
            figures = stats.setdefault(attempt.tool, {}).setdefault(record.kind, ToolKindStats())
            figures.attempts += 1
            figures.duration_total_s = round(
                figures.duration_total_s + attempt.durations.get("implement", 0.0), 3
            )
            if attempt.verdict == "PASS":
                figures.passes += 1
                figures.stories_passed += 1
                figures.attempts_to_pass_total += attempt.number
    for kinds in stats.values():
        for figures in kinds.values():
            figures.derive()
    return stats


def load_playbook(loops_dir: Path) -> Playbook:
    """The playbook, or an empty one when there is none yet or it cannot be read."""
    path = playbook_path(loops_dir)
    try:
        return Playbook.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return Playbook()
    except (OSError, ValueError, ValidationError):
        return Playbook()  # a damaged playbook only costs the planner its hints


def _locked(loops_dir: Path) -> FileLock:
    Path(loops_dir).mkdir(parents=True, exist_ok=True)
    return FileLock(Path(loops_dir) / f"{PLAYBOOK_FILE}.lock")


def merge_loop(loops_dir: Path, state: LoopState) -> Playbook:
    """Add this loop's figures to the playbook (once per loop id); atomic, locked."""
    with _locked(loops_dir):
        playbook = load_playbook(loops_dir)
        if state.loop_id not in playbook.loops:
            playbook.merge(loop_stats(state))
            playbook.loops.append(state.loop_id)
            playbook.updated_at = utc_now()
            atomic_write_json(playbook_path(loops_dir), playbook.model_dump(mode="json"))
        return playbook
