"""Git plumbing: the loop's worktree never touches the user's checkout; commit markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.loop import worktree

from .conftest import git


def test_worktree_leaves_a_dirty_checkout_untouched(tmp_path: Path, project: Path) -> None:
    (project / "README.md").write_text("dirty, not committed\n")
    (project / "new.txt").write_text("untracked\n")
    (project / "lint.py").write_text("# staged change\n")
    git(project, "add", "lint.py")
    status = git(project, "status", "--porcelain", "--untracked-files=all")
    head = git(project, "rev-parse", "HEAD")

    wt = tmp_path / "loops" / "loop-1" / "worktree"
    base = worktree.create_worktree(project, wt, "agent-loop/loop-1")
    assert base == head and worktree.current_branch(wt) == "agent-loop/loop-1"
    assert (wt / "README.md").read_text() == "# demo project\n"  # from HEAD, not the dirty file
    assert not (wt / "new.txt").exists()
    assert worktree.create_worktree(project, wt, "agent-loop/loop-1") == base  # idempotent

    (wt / "feature.py").write_text("X = 1\n")
    sha = worktree.commit_all(wt, "feat: [loop-1] [S1] attempt-1 — feature")
    assert sha and worktree.head_sha(wt) == sha
    assert worktree.commit_all(wt, "nothing") is None  # nothing to commit
    worktree.remove_worktree(project, wt)
    assert not wt.exists()

    assert git(project, "status", "--porcelain", "--untracked-files=all") == status
    assert (project / "README.md").read_text() == "dirty, not committed\n"
    assert (project / "new.txt").read_text() == "untracked\n"
    assert git(project, "diff", "--cached", "--name-only") == "lint.py"
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "symbolic-ref", "--short", "HEAD") == "main"
    assert not (project / "feature.py").exists()
    # The branch stays; re-adding the worktree resumes it.
    assert git(project, "rev-parse", "agent-loop/loop-1") == sha
    assert worktree.create_worktree(project, wt, "agent-loop/loop-1") == sha


def test_find_commit_matches_the_whole_marker(tmp_path: Path, project: Path) -> None:
    wt = tmp_path / "wt"
    base = worktree.create_worktree(project, wt, "agent-loop/x")
    shas = {}
    for n in (1, 10):
        (wt / f"f{n}.py").write_text(f"N = {n}\n")
        shas[n] = worktree.commit_all(wt, f"feat: [x] [S1] attempt-{n} — title")
    assert worktree.find_commit(wt, "feat: [x] [S1] attempt-1", since=base) == shas[1]
    assert worktree.find_commit(wt, "feat: [x] [S1] attempt-10", since=base) == shas[10]
    assert worktree.find_commit(wt, "feat: [x] [S1] attempt-2", since=base) is None
    assert worktree.find_commit(wt, "test: [x] [S1] attempt-1", since=base) is None
    assert worktree.find_commit(wt, "feat: [x] [S1] attempt-1", since=shas[10]) is None
    assert worktree.commits_between(wt, base) == [shas[1], shas[10]]


def test_commit_paths_and_reset(tmp_path: Path, project: Path) -> None:
    wt = tmp_path / "wt"
    base = worktree.create_worktree(project, wt, "agent-loop/y")
    (wt / "progress.txt").write_text("log\n")
    (wt / "other.py").write_text("x = 1\n")
    sha = worktree.commit_paths(wt, ["progress.txt"], "chore: progress")
    assert git(wt, "show", "--name-only", "--format=", sha) == "progress.txt"
    assert worktree.changed_paths(wt) == [("??", "other.py")]
    assert worktree.commit_paths(wt, ["progress.txt"], "again") is None
    worktree.reset_hard(wt, base)
    assert worktree.is_clean(wt) and not (wt / "progress.txt").exists()


def test_refuses_what_is_not_a_usable_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(PermanentError, match="is not a git repository"):
        worktree.create_worktree(plain, tmp_path / "wt", "agent-loop/z")
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(PermanentError, match="has no commits yet"):
        worktree.create_worktree(empty, tmp_path / "wt", "agent-loop/z")
    with pytest.raises(PermanentError, match="is not a folder"):
        worktree.create_worktree(tmp_path / "missing", tmp_path / "wt", "agent-loop/z")


def test_push_needs_the_remote(tmp_path: Path, project: Path) -> None:
    wt = tmp_path / "wt"
    worktree.create_worktree(project, wt, "agent-loop/p")
    with pytest.raises(PermanentError, match="cannot push: the project has no remote 'origin'"):
        worktree.push(wt, "origin", "agent-loop/p")
