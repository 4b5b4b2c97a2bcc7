"""The PRD: stories with acceptance criteria, and the commands that check the work.

Example `prd.json`::

    {"title": "Slugs", "description": "...",
     "stories": [{"id": "S1", "title": "Add slugify", "description": "...",
                  "acceptance_criteria": ["slugify('A b') returns 'a-b'"], "priority": 1}],
     "checks": {"typecheck": "python -m compileall -q .", "lint": null,
                "test": "python -m pytest -q"},
     "tests_dir": "tests"}

Check commands are split with `shlex.split` and run without a shell: pipes, `&&` or
redirections need a script in the project (e.g. `"lint": "./scripts/lint.sh"`).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import atomic_write_json, read_regular_file, windows_reserved

STORY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CHECK_NAMES = ("typecheck", "lint", "test")
MAX_PRD_BYTES = 1024 * 1024


@functools.lru_cache(maxsize=4096)
def valid_in_branch(story_id: str) -> bool:
    """git's own ref rules, asked of git (`git check-ref-format`), for the id where it ends a
    branch name: a skipped story's work is parked on `agent-loop/<loop>--skipped-<id>`
    (`S1.lock` and `S1.` pass a file-name check but are no ref)."""
    try:
        proc = subprocess.run(
            ["git", "check-ref-format", f"refs/heads/agent-loop/loop--skipped-{story_id}"],
            capture_output=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ValueError(f"cannot check story id {story_id!r} with git: {err}") from None
    return proc.returncode == 0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Story(_Model):
    id: str
    title: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=20_000)
    acceptance_criteria: list[str] = Field(min_length=1, max_length=50)
    priority: int = 100
    passes: bool = False

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not STORY_ID.match(value) or ".." in value:
            raise ValueError(
                f"{value!r} is not file-name safe (letters, digits, '.', '_', '-'; max 64)"
            )
        if windows_reserved(value):
            raise ValueError(f"{value!r} is a device name Windows reserves")
        if not valid_in_branch(value):
            raise ValueError(f"{value!r} is not valid in a git branch name (git check-ref-format)")
        return value

    @field_validator("acceptance_criteria")
    @classmethod
    def _criteria_text(cls, value: list[str]) -> list[str]:
        for index, item in enumerate(value):
            if not item.strip():
                raise ValueError(f"item {index} is empty")
        return value


class Checks(_Model):
    typecheck: str | None = None
    lint: str | None = None
    test: str | None = None

    @field_validator("typecheck", "lint", "test")
    @classmethod
    def _splittable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value:
            raise ValueError("empty command (use null for 'not configured')")
        try:
            argv = shlex.split(value)
        except ValueError as err:
            raise ValueError(f"cannot split command: {err}") from None
        if not argv:
            raise ValueError("empty command (use null for 'not configured')")
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> Checks:
        if not self.configured():
            raise ValueError("configure at least one of typecheck, lint, test")
        return self

    def configured(self) -> dict[str, str]:
        return {name: cmd for name in CHECK_NAMES if (cmd := getattr(self, name))}


class Prd(_Model):
    title: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=50_000)
    stories: list[Story] = Field(min_length=1, max_length=500)
    checks: Checks
    tests_dir: str = "tests"

    @field_validator("tests_dir")
    @classmethod
    def _relative_dir(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not value or path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a relative folder inside the project")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Prd:
        seen: dict[str, int] = {}
        for index, story in enumerate(self.stories):
            if story.id in seen:
                raise ValueError(
                    f"stories[{index}].id: duplicate story id {story.id!r} "
                    f"(also stories[{seen[story.id]}].id)"
                )
            seen[story.id] = index
        return self

    def story(self, story_id: str) -> Story:
        for story in self.stories:
            if story.id == story_id:
                return story
        raise PermanentError(f"no story {story_id!r} in PRD {self.title!r}")


def _describe_one(error: dict) -> str:
    where = ""
    for part in error.get("loc", ()):
        if isinstance(part, int):
            where += f"[{part}]"
        elif not str(part).startswith("function-"):
            where += f".{part}" if where else str(part)
    message = error.get("msg", "invalid").removeprefix("Value error, ")
    message = re.sub(r" after validation, not \d+$", "", message)
    if error.get("type") == "extra_forbidden":
        message = "unknown field (not part of the PRD format)"
    return f"{where}: {message}" if where else message


def describe_error(err: ValidationError) -> str:
    """Every error, one line: `stories[1].acceptance_criteria: List should have at least 1
    item; stories[2].id: Field required`. An unknown field is usually a typo of a required
    one: it comes first."""
    errors = sorted(err.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    return "; ".join(_describe_one(e) for e in errors)


def parse_prd(raw: object, name: str = "prd.json") -> Prd:
    if not isinstance(raw, dict):
        raise PermanentError(f"{name}: the PRD must be a JSON object, not {type(raw).__name__}")
    try:
        return Prd.model_validate(raw)
    except ValidationError as err:
        raise PermanentError(f"{name}: {describe_error(err)}") from None


def load_prd(path: Path, max_bytes: int = MAX_PRD_BYTES) -> Prd:
    """Read and validate a PRD file; raise PermanentError naming the file, field and reason.

    Read with `fsutil.read_regular_file`: a FIFO, device or huge file is refused at once, with
    the same line whether or not the path exists."""
    path = Path(path)
    data = read_regular_file(path, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PermanentError(f"{path.name}: not UTF-8 text") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise PermanentError(
            f"{path.name}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    return parse_prd(raw, path.name)


def save_prd(path: Path, prd: Prd) -> Path:
    return atomic_write_json(Path(path), prd.model_dump(mode="json"))


def mark_passed(path: Path, story_id: str) -> None:
    """Record in the PRD at `path` (a loop's copy) that story `story_id` passes."""
    prd = load_prd(Path(path))
    for story in prd.stories:
        if story.id == story_id:
            story.passes = True
    save_prd(Path(path), prd)
