"""Git plumbing for the loop, as `git` argument lists (no shell).

The loop works in its own worktree (`loops_dir/{loop_id}/worktree`) on branch
`agent-loop/{loop_id}`, created from the project's HEAD. The user's checkout - its working
files, index and current branch - is never touched; git only records the extra worktree and
branch in the project's `.git` folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from igs_dagster.core.errors import PermanentError

GIT_TIMEOUT_S = 120.0
PUSH_TIMEOUT_S = 300.0
FALLBACK_IDENTITY = ("-c", "user.name=igs-loop", "-c", "user.email=igs-loop@localhost")
# Variables a git hook (or a parent git) may have set; they would redirect our commands.
_GIT_REDIRECTS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PREFIX",
)


class GitError(RuntimeError):
    """A git command failed (transient unless wrapped in PermanentError by the caller)."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_EDITOR", "true")
    return env


def git(
    cwd: Path,
    *args: str,
    check: bool = True,
    input_bytes: bytes | None = None,
    timeout_s: float = GIT_TIMEOUT_S,
) -> subprocess.CompletedProcess[bytes]:
    git_bin = shutil.which("git")
    if git_bin is None:
        raise PermanentError("git is not installed (needed by the coding loop)")
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [git_bin, *args],
        cwd=cwd,
        input=input_bytes,
        capture_output=True,
        env=_env(),
        timeout=timeout_s,
        check=False,
    )
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(
            f"git {' '.join(args[:3])} failed in {cwd}: {err[-1] if err else proc.returncode}"
        )
    return proc


def _out(cwd: Path, *args: str) -> str:
    return git(cwd, *args).stdout.decode("utf-8", "replace").strip()


def repo_root(project: Path) -> Path:
    project = Path(project)
    if not project.is_dir():
        raise PermanentError(f"project {project} is not a folder")
    proc = git(project, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise PermanentError(f"project {project} is not a git repository")
    return Path(proc.stdout.decode().strip())


def head_sha(path: Path) -> str:
    return _out(path, "rev-parse", "HEAD")


def current_branch(path: Path) -> str | None:
    proc = git(path, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return proc.stdout.decode().strip() or None


def branch_exists(path: Path, branch: str) -> bool:
    return (
        git(
            path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
        ).returncode
        == 0
    )


def create_worktree(project: Path, worktree: Path, branch: str) -> str:
    """Add `worktree` on a new `branch` from the project's HEAD; idempotent. Returns its HEAD."""
    root = repo_root(project)
    worktree = Path(worktree)
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        raise PermanentError(f"project {root} has no commits yet: nothing to branch from")
    if worktree.exists():
        if (worktree / ".git").exists() and current_branch(worktree) == branch:
            return head_sha(worktree)
        if any(worktree.iterdir()):
            raise PermanentError(f"{worktree} exists and is not the loop's worktree on {branch}")
        worktree.rmdir()
    worktree.parent.mkdir(parents=True, exist_ok=True)
    git(root, "worktree", "prune")
    if branch_exists(root, branch):
        git(root, "worktree", "add", str(worktree), branch)
    else:
        git(root, "worktree", "add", "-b", branch, str(worktree), "HEAD")
    return head_sha(worktree)


def remove_worktree(project: Path, worktree: Path, *, delete_branch: str | None = None) -> None:
    """Remove the loop's worktree folder (the branch stays unless `delete_branch` names it)."""
    root = repo_root(project)
    if Path(worktree).exists():
        git(root, "worktree", "remove", "--force", str(worktree))
    git(root, "worktree", "prune")
    if delete_branch:
        git(root, "branch", "-D", delete_branch, check=False)


def _identity(cwd: Path) -> tuple[str, ...]:
    has_email = git(cwd, "config", "user.email", check=False).returncode == 0
    return () if has_email else FALLBACK_IDENTITY


def _commit(cwd: Path, message: str) -> str | None:
    if git(cwd, "diff", "--cached", "--quiet", check=False).returncode == 0:
        return None
    # --no-verify: the loop's own checks are the gate; a user's interactive hook would hang.
    git(cwd, *_identity(cwd), "commit", "--no-verify", "--quiet", "-m", message)
    return head_sha(cwd)


def commit_all(worktree: Path, message: str) -> str | None:
    """Stage everything (respecting .gitignore) and commit; None when there is nothing to commit."""
    git(worktree, "add", "-A")
    return _commit(worktree, message)


def commit_paths(worktree: Path, paths: Sequence[str], message: str) -> str | None:
    """Commit only `paths` (other changes stay as they are); None when they did not change."""
    git(worktree, "add", "-A", "--", *paths)
    if git(worktree, "diff", "--cached", "--quiet", "--", *paths, check=False).returncode == 0:
        return None
    git(
        worktree,
        *_identity(worktree),
        "commit",
        "--no-verify",
        "--quiet",
        "-m",
        message,
        "--",
        *paths,
    )
    return head_sha(worktree)


def log_subjects(worktree: Path, since: str | None = None) -> list[tuple[str, str]]:
    """(sha, subject) pairs, newest first, of `since..HEAD` (all of HEAD's history if None)."""
    rev = f"{since}..HEAD" if since else "HEAD"
    text = _out(worktree, "log", "--format=%H%x00%s", rev)
    return [tuple(line.split("\x00", 1)) for line in text.splitlines() if "\x00" in line]  # type: ignore[misc]


def find_commit(worktree: Path, marker: str, since: str | None = None) -> str | None:
    """The newest commit whose subject contains `marker` as a whole token, or None.

    Markers look like `feat: [loopId] [storyId] attempt-N`: `attempt-1` does not match
    `attempt-10`.
    """
    pattern = re.compile(re.escape(marker) + r"(?![0-9A-Za-z_-])")
    for sha, subject in log_subjects(worktree, since):
        if pattern.search(subject):
            return sha
    return None


def commits_between(worktree: Path, base: str, head: str = "HEAD") -> list[str]:
    """Commits in `base..head`, oldest first."""
    text = _out(worktree, "rev-list", "--reverse", f"{base}..{head}")
    return text.split()


def is_clean(worktree: Path) -> bool:
    return not _out(worktree, "status", "--porcelain", "--untracked-files=all")


def changed_paths(worktree: Path) -> list[tuple[str, str]]:
    """(status, path) of every uncommitted change, untracked files included."""
    raw = git(worktree, "status", "--porcelain", "-z", "--untracked-files=all").stdout.decode(
        "utf-8", "replace"
    )
    entries = raw.split("\x00")
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        found.append((status, path))
        if "R" in status or "C" in status:
            i += 1  # the rename's source path follows
    return found


def reset_hard(worktree: Path, sha: str) -> None:
    """Move the worktree's branch to `sha`, dropping uncommitted and untracked (not ignored) files."""
    git(worktree, "reset", "--quiet", "--hard", sha)
    git(worktree, "clean", "-fdq")


def unstage_commits_since(worktree: Path, base: str) -> None:
    """Undo commits after `base` but keep their changes in the working tree (unstaged)."""
    git(worktree, "reset", "--quiet", "--mixed", base)


def discard_paths(worktree: Path, changes: Iterable[tuple[str, str]]) -> list[str]:
    """Throw away the uncommitted `changes` (tracked: restore from HEAD; untracked: delete)."""
    dropped: list[str] = []
    tracked: list[str] = []
    for status, path in changes:
        if status == "??":
            target = Path(worktree) / path
            if target.is_file() or target.is_symlink():
                target.unlink()
        else:
            tracked.append(path)
        dropped.append(path)
    if tracked:
        git(worktree, "checkout", "--quiet", "HEAD", "--", *tracked)
    return dropped


def create_branch(worktree: Path, branch: str, sha: str = "HEAD") -> None:
    git(worktree, "branch", "--force", branch, sha)


def apply_diff(worktree: Path, base: str, tip: str, exclude: Sequence[str] = ()) -> bool:
    """Apply the changes `base..tip` (minus `exclude` paths) to the working tree; False if empty
    or if they do not apply (the worktree is left as it was)."""
    pathspec = ["--", ".", *(f":(exclude){p}" for p in exclude)]
    patch = git(worktree, "diff", "--binary", base, tip, *pathspec).stdout
    if not patch.strip():
        return False
    proc = git(worktree, "apply", "--3way", "--whitespace=nowarn", input_bytes=patch, check=False)
    if proc.returncode != 0:
        reset_hard(worktree, "HEAD")
        return False
    return True


def push(worktree: Path, remote: str, branch: str) -> None:
    """`git push --set-upstream remote branch` (no prompts; a hanging remote times out)."""
    if git(worktree, "remote", "get-url", remote, check=False).returncode != 0:
        raise PermanentError(f"cannot push: the project has no remote {remote!r}")
    try:
        git(
            worktree,
            "push",
            "--quiet",
            "--set-upstream",
            remote,
            f"{branch}:{branch}",
            timeout_s=PUSH_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git push to {remote} timed out after {PUSH_TIMEOUT_S:g} s") from None
