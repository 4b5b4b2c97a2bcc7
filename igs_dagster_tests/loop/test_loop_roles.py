"""The coding loop end to end: role functions called in sequence on real git projects, with
stand-in agent CLIs (igs_dagster_tests/loop/agents) and real check commands."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from igs_dagster.loop import control, finish, roles
from igs_dagster.loop.driver import run_to_end
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.planner import choose_tool
from igs_dagster.loop.playbook import load_playbook
from igs_dagster.loop.prd import load_prd
from igs_dagster.loop.state import LoopCancelled, is_cancelled, load_loop, state_path
from igs_dagster_tests.conftest import pid_gone

from .conftest import S_ADD, S_SLUG, S_WORDS, agent, git, loop_env, story, write_prd


def subjects(path: Path, rev: str = "HEAD") -> list[str]:
    return git(path, "log", "--format=%s", rev).splitlines()


def checkout_snapshot(project: Path) -> dict[str, str]:
    return {
        "status": git(project, "status", "--porcelain=v1", "--untracked-files=all"),
        "diff": git(project, "diff"),
        "cached": git(project, "diff", "--cached"),
        "head": git(project, "rev-parse", "HEAD"),
        "branch": git(project, "symbolic-ref", "HEAD"),
        "readme": (project / "README.md").read_text(),
        "scratch": (project / "scratch.txt").read_text(),
    }


def drive(env: LoopEnv, loop_id: str) -> list[dict]:
    """Call the role functions in sequence, as the Dagster layer will, until the loop is done."""
    results = run_to_end(env, loop_id, max_steps=100)
    assert results and results[0]["role"] == "plan" and results[-1]["next"] == "done"
    return results


def test_full_loop_three_stories(tmp_path: Path, project: Path) -> None:
    # The user's checkout is dirty (edited, staged, untracked files): the loop must not care.
    (project / "README.md").write_text("# demo project\nlocal edit, not committed\n")
    (project / "staged.txt").write_text("staged\n")
    git(project, "add", "staged.txt")
    (project / "scratch.txt").write_text("untracked\n")
    before = checkout_snapshot(project)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))

    prd_path = write_prd(tmp_path / "prd.json", [S_SLUG, S_WORDS | {"priority": 3}, S_ADD])
    env = loop_env(tmp_path, pi=agent("implementor.py", "--commit"))  # S3 by a tool that commits
    started = roles.start(
        env, {"project": str(project), "prd": str(prd_path), "tools": {"S3": "pi"}, "push": True}
    )
    lid = started["loop_id"]
    assert started["next"] == "plan" and started["branch"] == f"agent-loop/{lid}"
    results = drive(env, lid)

    # Roles chained by their "next": stories by priority (S1, S2, S3), one attempt each.
    assert [r["role"] for r in results] == (
        ["plan", "implement", "review", "judge"] * 3 + ["plan", "complete", "retro"]
    )
    assert [r["story"] for r in results if r["role"] == "plan"][:3] == ["S1", "S2", "S3"]
    assert [r["verdict"] for r in results if r["role"] == "judge"] == ["PASS"] * 3
    assert results[-3]["next"] == "complete"
    done = results[-2]
    assert done["passed"] == ["S2", "S3", "S1"]  # PRD order
    assert done["skipped"] == [] and done["pushed"] is True

    wt = Path(started["worktree"])
    log = subjects(wt)
    for sid, title in (("S1", "Add function in calc"), ("S2", "Slugify titles")):
        assert f"feat: [{lid}] [{sid}] attempt-1 — {title}" in log
        assert f"test: [{lid}] [{sid}] attempt-1 — tests from acceptance criteria" in log
        assert f"chore: [{lid}] [{sid}] attempt-1 — progress: PASS" in log
    # S3's tool committed itself: its commit is kept and recorded, no second feat commit.
    assert "S3: implemented by the stand-in" in log
    assert not any(s.startswith(f"feat: [{lid}] [S3]") for s in log)
    assert f"test: [{lid}] [S3] attempt-1 — tests from acceptance criteria" in log
    state = load_loop(env.loops_dir, lid)
    s3 = state.stories["S3"].attempts[0]
    assert s3.tool == "pi" and "user override" in s3.tool_reason
    assert [git(wt, "log", "-1", "--format=%s", c) for c in s3.commits] == [
        "S3: implemented by the stand-in"
    ]
    assert state.status == "complete" and state.next_step == "done"
    assert all(r.status == "passed" and len(r.attempts) == 1 for r in state.stories.values())
    assert git(wt, "status", "--porcelain") == ""
    assert (wt / "calc.py").is_file() and (wt / "tests" / "test_s2.py").is_file()

    # progress.txt: one entry per story, the pattern an agent added, committed on the branch.
    text = (wt / "progress.txt").read_text()
    for sid in ("S1", "S2", "S3"):
        assert text.count(f"<!-- igs:{lid}/{sid}/attempt-1 -->") == 1
    assert "outcome: story PASSED after 1 attempt(s)" in text
    assert "check test: passed" in text
    assert "- Functions live in top-level modules" in text
    # ...which the next implementor's prompt carries.
    stories_dir = env.loops_dir / lid / "stories"
    s1_prompt = (stories_dir / "S1" / "attempt-1" / "implement-prompt.md").read_text()
    s2_prompt = (stories_dir / "S2" / "attempt-1" / "implement-prompt.md").read_text()
    assert "Functions live in top-level modules" not in s1_prompt
    assert "## Codebase patterns (from progress.txt)" in s2_prompt
    assert "Functions live in top-level modules" in s2_prompt

    # The loop's PRD copy has passes marked; the user's PRD file is untouched.
    assert all(s.passes for s in load_prd(Path(state.prd)).stories)
    assert not any(s.passes for s in load_prd(prd_path).stories)

    # Reviewer prompts: criteria only, nothing of the code in the worktree.
    code = [
        line.strip()
        for name in ("calc.py", "textutil.py")
        for line in (wt / name).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for sid in ("S1", "S2", "S3"):
        prompt = (
            env.loops_dir / lid / "stories" / sid / "attempt-1" / "review-prompt.md"
        ).read_text()
        assert "## Acceptance criteria" in prompt
        assert not [line for line in code if line in prompt]
        assert "def " not in prompt and "calc.py" not in prompt

    # Notes, playbook, push.
    summary = Path(done["summary_note"]).read_text()
    assert summary == (tmp_path / "vault" / "Loops" / f"{lid}.md").read_text()
    assert "passed: 3" in summary and "| S3 | Count words | code | passed | 1 | pi |" in summary
    retro = (tmp_path / "vault" / "Loops" / f"{lid}-retro.md").read_text()
    assert "## Tools per story kind (this loop)" in retro
    assert "| code | codex | 2 | 2 | 100% |" in retro and "| code | pi | 1 | 1 | 100% |" in retro
    playbook = json.loads((env.loops_dir / "playbook.json").read_text())
    assert playbook["loops"] == [lid]
    assert playbook["stats"]["codex"]["code"]["attempts"] == 2
    assert playbook["stats"]["codex"]["code"]["pass_rate"] == 1.0
    assert git(remote, "rev-parse", f"refs/heads/agent-loop/{lid}") == state.head_sha

    # The user's checkout: same files, same index, same branch and HEAD.
    assert checkout_snapshot(project) == before
    assert git(project, "branch", "--list", f"agent-loop/{lid}").strip()

    # A retried retro does not count the loop twice.
    assert finish.retro(env, lid)["next"] == "done"
    assert load_playbook(env.loops_dir).get("codex", "code").attempts == 2


def test_fail_then_retry_passes_with_feedback_in_the_second_prompt(
    tmp_path: Path, project: Path
) -> None:
    env = loop_env(tmp_path, codex=agent("flaky_implementor.py", "--state", str(tmp_path / "runs")))
    prd = write_prd(tmp_path / "prd.json", [S_ADD])
    lid = roles.start(env, {"project": str(project), "prd": str(prd), "tools": {"S1": "codex"}})[
        "loop_id"
    ]
    results = drive(env, lid)
    judged = [r for r in results if r["role"] == "judge"]
    assert [r["verdict"] for r in judged] == ["FAIL", "PASS"]
    assert judged[0]["next"] == "implement" and judged[0]["attempt"] == 2
    assert judged[0]["tool"] == "codex"  # the user's override holds on every attempt

    folder = env.loops_dir / lid / "stories" / "S1"
    feedback = (folder / "attempt-1" / "feedback.md").read_text()
    assert "test failed (exit 1)" in feedback and "assert -1 == 5" in feedback
    assert str(folder / "attempt-1" / "checks" / "test.log") in feedback
    first = (folder / "attempt-1" / "implement-prompt.md").read_text()
    second = (folder / "attempt-2" / "implement-prompt.md").read_text()
    assert "Judge feedback" not in first
    assert "Judge feedback on attempt 1 (it FAILED: fix this first)" in second
    assert "assert -1 == 5" in second

    state = load_loop(env.loops_dir, lid)
    record = state.stories["S1"]
    assert record.status == "passed" and [a.verdict for a in record.attempts] == ["FAIL", "PASS"]
    wt = Path(state.worktree)
    log = subjects(wt)
    assert f"feat: [{lid}] [S1] attempt-1 — Add function in calc" in log
    assert f"feat: [{lid}] [S1] attempt-2 — Add function in calc" in log
    assert f"chore: [{lid}] [S1] attempt-1 — progress: FAIL" in log
    text = (wt / "progress.txt").read_text()
    assert "attempt 1 FAIL" in text and "attempt 2 PASS" in text
    assert "outcome: retry (feedback:" in text


def test_never_passing_story_is_skipped_then_rechecked_once(tmp_path: Path, project: Path) -> None:
    greet = story(
        "S1", "Greeting", ["`greeting.greet('Ada Lovelace')` returns `'hello-ada-lovelace'`"], 1
    )
    fib = story("S3", "Fibonacci", ["`mathx.fib(10)` returns `55`"], 3)  # the stand-in can't
    env = loop_env(tmp_path)
    prd = write_prd(tmp_path / "prd.json", [greet, S_SLUG, fib])
    lid = roles.start(
        env, {"project": str(project), "prd": str(prd), "max_attempts": 2, "tools": {"*": "codex"}}
    )["loop_id"]
    results = drive(env, lid)
    judged = [
        (r["judged_story"], r["judged_attempt"], r["verdict"], r.get("skipped", False))
        for r in results
        if r["role"] == "judge"
    ]
    # S1 needs textutil.slugify, which S2 brings later: it fails twice and is skipped.
    assert judged == [
        ("S1", 1, "FAIL", False),
        ("S1", 2, "FAIL", True),
        ("S2", 1, "PASS", False),
        ("S3", 1, "FAIL", False),
        ("S3", 2, "FAIL", True),
    ]
    state = load_loop(env.loops_dir, lid)
    wt = Path(state.worktree)
    s1, s3 = state.stories["S1"], state.stories["S3"]
    # At complete, each skipped story is rechecked once: S1 now passes, S3 still fails.
    assert s1.status == "passed" and s1.passed_by == "recheck" and s1.rechecked
    assert s3.status == "skipped" and s3.rechecked
    done = next(r for r in results if r["role"] == "complete")
    assert done["passed"] == ["S1", "S2"] and done["skipped"] == ["S3"]
    log = subjects(wt)
    assert f"feat: [{lid}] [S1] recheck — Greeting (passed at the final recheck)" in log
    assert f"chore: [{lid}] [S3] skipped — work kept on agent-loop/{lid}--skipped-S3" in log
    # S3's failing code and tests are not on the loop branch, but kept on its side branch.
    assert not (wt / "mathx.py").exists() and not (wt / "tests" / "test_s3.py").exists()
    parked = subjects(wt, f"agent-loop/{lid}--skipped-S3")
    assert f"feat: [{lid}] [S3] attempt-1 — Fibonacci" in parked
    text = (wt / "progress.txt").read_text()
    assert "S3 Fibonacci: attempt 2 FAIL" in text and "S3 Fibonacci: recheck FAIL" in text
    assert "S1 Greeting: recheck PASS" in text
    assert load_prd(Path(state.prd)).story("S1").passes
    assert not load_prd(Path(state.prd)).story("S3").passes
    # The branch is green at the end.
    assert git(wt, "status", "--porcelain") == ""
    retro = Path(state.retro_note).read_text()
    assert "**S3** Fibonacci [code]: skipped" in retro and "(passed at the final recheck)" in retro
    # Rechecks happen once: a repeated complete does nothing more.
    assert finish.complete(env, lid).get("repeated") is True


def test_retried_implementor_finds_its_own_commit(tmp_path: Path, project: Path) -> None:
    env = loop_env(tmp_path)
    prd = write_prd(tmp_path / "prd.json", [S_ADD])
    lid = roles.start(env, {"project": str(project), "prd": str(prd)})["loop_id"]
    roles.plan(env, lid)
    record_before = state_path(env.loops_dir, lid).read_bytes()
    first = roles.implement(env, lid)
    assert first["next"] == "review" and first["reused"] is False
    # Crash after the commit but before the record was saved: the record says "implement".
    state_path(env.loops_dir, lid).write_bytes(record_before)
    mark = tmp_path / "tripwire-ran"
    env2 = loop_env(tmp_path, codex=agent("tripwire_agent.py", "--mark", str(mark)))
    again = roles.implement(env2, lid)
    assert again["next"] == "review" and again["reused"] is True
    assert again["commits"] == first["commits"]
    assert not mark.exists()  # the agent did not run again
    wt = Path(load_loop(env.loops_dir, lid).worktree)
    assert subjects(wt).count(f"feat: [{lid}] [S1] attempt-1 — Add function in calc") == 1
    # A role called again after it finished answers without redoing anything.
    repeated = roles.implement(env2, lid)
    assert repeated["repeated"] is True and repeated["next"] == "review"
    assert not mark.exists()


def test_hanging_implementor_times_out_cleanly(tmp_path: Path, project: Path) -> None:
    pids = tmp_path / "pids"
    env = loop_env(tmp_path, codex=agent("hanging_agent.py", "--pids", str(pids)), timeout_s=6.0)
    prd = write_prd(tmp_path / "prd.json", [S_ADD])
    lid = roles.start(env, {"project": str(project), "prd": str(prd)})["loop_id"]
    roles.plan(env, lid)
    result = roles.implement(env, lid)
    assert result == result | {
        "next": "judge",
        "ok": False,
        "error": "implementor codex timed out after 6 s",
    }
    agent_pid, child_pid = map(int, pids.read_text().split())
    assert pid_gone(agent_pid) and pid_gone(child_pid)  # the whole process group, SIGTERM ignored
    state = load_loop(env.loops_dir, lid)
    wt = Path(state.worktree)
    assert not (wt / "partial_work.py").exists() and git(wt, "status", "--porcelain") == ""
    assert not (env.loops_dir / lid / "agent.pid").exists()
    judged = roles.judge(env, lid)
    assert judged["verdict"] == "FAIL" and judged["next"] == "implement" and judged["attempt"] == 2
    assert judged["tool"] == "claude"  # retry ladder: codex -> claude
    feedback = Path(judged["feedback_path"]).read_text()
    assert "implementor codex timed out after 6 s" in feedback and "working..." in feedback


def test_cancel_flag_makes_roles_refuse_and_stops_a_running_agent(
    tmp_path: Path, project: Path
) -> None:
    pids = tmp_path / "pids"
    env = loop_env(tmp_path, codex=agent("hanging_agent.py", "--pids", str(pids)), timeout_s=60)
    prd = write_prd(tmp_path / "prd.json", [S_ADD])
    lid = roles.start(env, {"project": str(project), "prd": str(prd)})["loop_id"]
    roles.plan(env, lid)

    def cancel_when_running() -> None:
        for _ in range(200):
            if pids.exists() and (env.loops_dir / lid / "agent.pid").exists():
                break
            threading.Event().wait(0.05)
        control.cancel(env, lid)

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    with pytest.raises(LoopCancelled, match="cancelled while codex was implementing"):
        roles.implement(env, lid)
    canceller.join()
    agent_pid, child_pid = map(int, pids.read_text().split())
    assert pid_gone(agent_pid) and pid_gone(child_pid)
    assert is_cancelled(env.loops_dir, lid)
    assert load_loop(env.loops_dir, lid).status == "cancelled"
    for role in (
        roles.plan,
        roles.implement,
        roles.review,
        roles.judge,
        finish.complete,
        finish.retro,
    ):
        with pytest.raises(LoopCancelled, match="refused to start"):
            role(env, lid)


def test_cancel_before_a_role_starts(tmp_path: Path, project: Path) -> None:
    env = loop_env(tmp_path)
    prd = write_prd(tmp_path / "prd.json", [S_ADD])
    lid = roles.start(env, {"project": str(project), "prd": str(prd)})["loop_id"]
    result = control.cancel(env, lid)
    assert result == {"loop_id": lid, "status": "cancelled", "killed": False}
    with pytest.raises(LoopCancelled, match=f"loop {lid} is cancelled: plan refused to start"):
        roles.plan(env, lid)
    assert load_loop(env.loops_dir, lid).stories["S1"].attempts == []
    # `igs loop status` says it once: not `cancelled (cancelled (cancelled by user))` (issue 26)
    from igs_dagster.cli.loop import format_loop, loop_summary

    state = load_loop(env.loops_dir, lid)
    assert state.stop_reason == "cancelled by user"
    detail = {**state.model_dump(mode="json"), "summary": loop_summary(state), "runs": []}
    assert format_loop({**detail, "outcome": "cancelled"}).splitlines()[0] == f"loop {lid}: cancelled by user"
    old = {**detail["summary"], "error": "cancelled (cancelled by user)"}  # a record from before
    assert format_loop({**detail, "summary": old, "outcome": "cancelled"}).splitlines()[0] == (
        f"loop {lid}: cancelled by user")


def test_reviewer_changes_outside_the_tests_folder_are_discarded(
    tmp_path: Path, project: Path
) -> None:
    env = loop_env(tmp_path, claude=agent("reviewer.py", "--tamper"))
    prd = write_prd(tmp_path / "prd.json", [S_ADD])
    lid = roles.start(env, {"project": str(project), "prd": str(prd)})["loop_id"]
    for role in (roles.plan, roles.implement):
        role(env, lid)
    result = roles.review(env, lid)
    assert result["checks"] == {"typecheck": "passed", "lint": "passed", "test": "passed"}
    state = load_loop(env.loops_dir, lid)
    wt = Path(state.worktree)
    assert "reviewer was here" not in (wt / "calc.py").read_text()
    assert not (wt / "reviewer_notes.txt").exists()
    files = git(wt, "show", "--name-only", "--format=", result["test_commit"]).split()
    assert files == ["tests/test_s1.py"]
    assert any(
        "discarded: calc.py, reviewer_notes.txt" in n for n in state.stories["S1"].attempts[0].notes
    )


def test_max_iterations_stops_the_loop(tmp_path: Path, project: Path) -> None:
    env = loop_env(tmp_path, codex=agent("implementor.py", "--buggy"))
    prd = write_prd(tmp_path / "prd.json", [S_ADD, S_SLUG])
    lid = roles.start(
        env,
        {"project": str(project), "prd": str(prd), "max_iterations": 1, "tools": {"*": "codex"}},
    )["loop_id"]
    results = drive(env, lid)
    judged = next(r for r in results if r["role"] == "judge")
    assert judged["verdict"] == "FAIL" and judged["next"] == "complete"
    assert judged["reason"] == "max_iterations (1) reached"
    done = next(r for r in results if r["role"] == "complete")
    assert done["failed"] == ["S1"] and done["pending"] == ["S2"]
    assert done["stop_reason"] == "max_iterations (1) reached"


def test_playbook_where_codex_failed_code_stories_changes_the_next_choice(
    tmp_path: Path, project: Path
) -> None:
    # Loop 1: codex writes wrong code, claude gets it right on the retry ladder.
    env = loop_env(
        tmp_path,
        codex=agent("implementor.py", "--buggy"),
        claude=agent("implementor.py"),
        pi=agent("reviewer.py"),
    )
    prd = write_prd(tmp_path / "prd.json", [S_ADD, S_SLUG])
    first = roles.start(
        env, {"project": str(project), "prd": str(prd), "tools": {"reviewer": "pi"}}
    )
    results = drive(env, first["loop_id"])
    tools = [
        (r["story"], r["attempt"], r["tool"])
        for r in results
        if r.get("tool") and r["role"] in ("plan", "judge") and r["next"] == "implement"
    ]
    assert tools == [
        ("S1", 1, "codex"),
        ("S1", 2, "claude"),
        ("S2", 1, "codex"),
        ("S2", 2, "claude"),
    ]
    playbook = load_playbook(env.loops_dir)
    codex, claude = playbook.get("codex", "code"), playbook.get("claude", "code")
    assert (codex.attempts, codex.passes, codex.pass_rate) == (2, 0, 0.0)
    assert (claude.attempts, claude.passes, claude.pass_rate, claude.mean_attempts_to_pass) == (
        2,
        2,
        1.0,
        2.0,
    )
    retro = (tmp_path / "vault" / "Loops" / f"{first['loop_id']}-retro.md").read_text()
    assert "- code: the planner will use claude" in retro

    # Without the playbook a code story goes to codex; with it, to claude, and it says why.
    nxt = load_prd(write_prd(tmp_path / "prd2.json", [S_WORDS])).stories[0]
    assert choose_tool(nxt, 1, {}, None)[0] == "codex"
    tool, reason = choose_tool(nxt, 1, {}, playbook)
    assert tool == "claude"
    assert reason == (
        "playbook: codex passed 0/2 'code' attempts (0%), claude 2/2 (100%) "
        "-> claude instead of the default codex"
    )
    # Loop 2's planner picks claude for its code story; the ladder then goes claude -> codex.
    second = roles.start(env, {"project": str(project), "prd": str(tmp_path / "prd2.json")})
    planned = roles.plan(env, second["loop_id"])
    assert (planned["story"], planned["tool"], planned["reason"]) == ("S3", "claude", reason)
    assert choose_tool(nxt, 2, {}, playbook)[0] == "codex"
    # An explicit override still wins over the playbook.
    assert choose_tool(nxt, 1, {"code": "codex"}, playbook) == (
        "codex",
        "user override tools['code']=codex",
    )


def test_start_refuses_bad_input(tmp_path: Path, project: Path) -> None:
    from igs_dagster.core.errors import PermanentError

    env = loop_env(tmp_path)
    good = write_prd(tmp_path / "prd.json", [S_ADD])
    bad = write_prd(tmp_path / "bad.json", [S_ADD | {"acceptance_criteria": []}])
    with pytest.raises(
        PermanentError,
        match=r"^bad.json: stories\[0\].acceptance_criteria: List should have at least 1 item$",
    ):
        roles.start(env, {"project": str(project), "prd": str(bad)})
    with pytest.raises(PermanentError, match="tools: unknown key 'S9'"):
        roles.start(env, {"project": str(project), "prd": str(good), "tools": {"S9": "codex"}})
    with pytest.raises(
        PermanentError,
        match=r"^invalid loop request: max_attempts: Input should be greater than or equal to 1$",
    ):
        roles.start(env, {"project": str(project), "prd": str(good), "max_attempts": 0})
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(PermanentError, match="is not a git repository"):
        roles.start(env, {"project": str(plain), "prd": str(good)})
    assert not env.loops_dir.exists() or not any(env.loops_dir.iterdir())
