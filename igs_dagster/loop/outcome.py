"""What a loop came to, for people: `failed`/`incomplete` instead of `complete` when stories
did not pass, each story's last failure reason, how to look at and merge the branch, a check
whose program does not exist refused at start, and `clean` for finished loops' worktrees."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.text import first_line
from igs_dagster.loop import worktree
from igs_dagster.loop.state import TERMINAL, LoopState, StoryRecord, list_loops

MAX_REASON = 200


def outcome(state: LoopState) -> str:
    """`complete` only when every story passed; a finished loop with some passed stories is
    `incomplete`, with none `failed`. Other statuses (queued, running, ...) are shown as is."""
    if state.status != "complete" or not state.stories:
        return state.status
    passed = sum(record.status == "passed" for record in state.stories.values())
    if passed == len(state.stories):
        return "complete"
    return "incomplete" if passed else "failed"


def last_failure(record: StoryRecord) -> str | None:
    """The reason the story's last failed attempt gave: the agent's error, the failing
    checks, or the judge's feedback (first line). None when it passed or never ran."""
    if record.status == "passed":
        return None
    for attempt in reversed(record.attempts):
        if attempt.error:
            return first_line(attempt.error, MAX_REASON)
        failed = [check for check in attempt.checks if check.status == "failed"]
        if failed:
            return first_line("; ".join(
                f"{check.name}: {check.reason or 'failed'}{_tail_hint(check.tail)}"
                for check in failed), MAX_REASON)
        if attempt.verdict == "FAIL":
            feedback = Path(attempt.feedback_path) if attempt.feedback_path else None
            text = ""
            if feedback is not None and feedback.is_file():
                text = next((line.strip() for line in feedback.read_text(errors="replace")
                             .splitlines() if line.strip() and not line.startswith("#")), "")
            return first_line(f"judge: FAIL{': ' + text if text else ''}", MAX_REASON)
    return first_line(record.note, MAX_REASON) if record.note else None


def _tail_hint(tail: str) -> str:
    """The check output's most telling line (a FAILED/Error line, else its last line)."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for wanted in (lambda x: x.startswith(("FAILED", "ERROR")), lambda x: x.startswith("E "),
                   lambda x: "Error" in x):
        telling = [line for line in lines if wanted(line)]
        if telling:
            return f" ({telling[0]})"
    return f" ({lines[-1]})" if lines else ""


def merge_hints(state: LoopState) -> list[str]:
    """Commands to look at the loop's branch and merge it (for a finished loop)."""
    project = shlex.quote(state.project)
    base = state.base_sha[:12] if state.base_sha else "HEAD"
    return [
        f"look:  git -C {project} log --oneline {base}..{state.branch}",
        f"       git -C {project} diff {base}...{state.branch}",
        f"merge: git -C {project} merge --no-ff {state.branch}",
    ]


def check_programs(checks: dict[str, str], project: Path) -> None:
    """Refuse a check whose program is not found now (on PATH, or as a path in the project)."""
    for name, command in checks.items():
        program = shlex.split(command)[0]
        if "/" in program:
            path = Path(program) if Path(program).is_absolute() else Path(project) / program
            found = path.is_file()
        else:
            found = shutil.which(program) is not None
        if not found:
            raise PermanentError(
                f"check {name}: program {program!r} not found "
                f"({'in the project' if '/' in program else 'on PATH'}); fix the PRD's checks.{name}"
            )


def _merged(project: Path, branch: str) -> bool:
    """The branch's commits are all in the project's current HEAD."""
    root = worktree.repo_root(project)
    tip = worktree.git(root, "rev-parse", "--verify", "--quiet", branch, check=False)
    if tip.returncode:
        return True  # no branch left: nothing to lose
    return worktree.git(root, "merge-base", "--is-ancestor", tip.stdout.strip(), "HEAD",
                        check=False).returncode == 0


def _side_branches(project: Path, branch: str) -> list[str]:
    """The branches a loop parked skipped stories' work on (`<branch>--skipped-...`)."""
    refs = worktree.git(worktree.repo_root(project), "for-each-ref", "--format=%(refname:short)",
                        f"refs/heads/{branch}--skipped-*", check=False)
    return refs.stdout.decode("utf-8", "replace").split()


def clean(loops_dir: Path, *, force: bool = False) -> list[dict]:
    """Remove the worktree of every finished loop; delete its branch (and parked side branches)
    when merged, or with `force`. Unmerged branches stay without `force`."""
    done = []
    for state in list_loops(loops_dir):
        if state.status not in TERMINAL:
            continue
        project = Path(state.project)
        if not project.is_dir():
            done.append({"loop_id": state.loop_id, "action": f"project {project} is gone: skipped"})
            continue
        had_worktree = Path(state.worktree).exists()
        has_branch = worktree.branch_exists(project, state.branch)
        if not had_worktree and not has_branch:
            continue  # cleaned before
        merged = _merged(project, state.branch)
        parked = {r.parked_branch for r in state.stories.values() if r.parked_branch}
        parked.update(_side_branches(project, state.branch))  # a resumed loop's earlier ones
        delete = merged or force
        worktree.remove_worktree(project, Path(state.worktree),
                                 delete_branch=state.branch if delete else None)
        if delete:
            for branch in parked:
                worktree.git(worktree.repo_root(project), "branch", "-D", branch, check=False)
        if not had_worktree and not delete:
            action = f"kept unmerged branch {state.branch} (--force deletes it)"
        elif delete:
            action = (f"removed worktree{'' if had_worktree else ' (none left)'} and "
                      f"{'merged' if merged else 'UNMERGED'} branch {state.branch}")
        else:
            action = f"removed worktree; kept unmerged branch {state.branch} (--force deletes it)"
        done.append({"loop_id": state.loop_id, "action": action})
    return done
