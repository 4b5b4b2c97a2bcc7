"""The coding loop on a real Dagster deployment: `igs loop start` -> intake (PRD checked, loop
id assigned) -> the inbox sensor -> queued `loop_story` run -> each run queues the next one
(`loop_story` / `loop_attempt` / `loop_finish`; the `igs_events` sensor where that fails) until
the loop is done.

Real git projects in tmp, the stand-in agents of igs_dagster_tests/loop/agents behind one
dispatcher (the story id picks the behaviour: S* implement, F* fail once, H* hang, K* hang
on the first run only; any story is implemented wrong while `agent-state/buggy-<story>`
exists), cheap real checks (compileall, a tiny pytest run).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.inbox import EventQueue
from igs_dagster.defs.instance import PROJECT_TAG
from igs_dagster.defs.loop.resources import LOOP_TAG, project_hash
from igs_dagster.defs.loop.turns import turn_run_id
from igs_dagster.loop.state import TERMINAL, LoopState, load_loop
from igs_dagster_tests.conftest import pid_gone
from igs_dagster_tests.dagster_env import PYTHON, REPO, DagsterEnv
from igs_dagster_tests.loop.conftest import AGENTS, S_ADD, S_SLUG, S_WORDS, git, make_project
from igs_dagster_tests.loop.conftest import write_prd as _write_prd

pytestmark = pytest.mark.slow
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
CHECKS = {"typecheck": "python -m compileall -q .", "test": "python -m pytest -q -p no:cacheprovider"}
LOOP_ID = re.compile(r"loop-\d{8}-\d{6}-[0-9a-f]{4}")

DISPATCH = '''\
"""Stand-in agent for every tool: picks a stand-in of igs_dagster_tests/loop/agents by story."""
import os
import re
import sys
import tempfile
from pathlib import Path

agents, state = Path(sys.argv[1]), Path(sys.argv[2])
prompt = sys.stdin.read()
found = re.search(r"^# (Implement|Write tests for) story ([\\w.-]+):", prompt, re.M)
role, story = found.groups() if found else ("Implement", "?")
script, args = "implementor.py", []
if role == "Write tests for":
    script = "reviewer.py"
elif (state / f"buggy-{story}").exists():  # wrong while the test leaves this file there
    args = ["--buggy"]
elif story.startswith("F"):  # buggy on its first run, right afterwards
    script, args = "flaky_implementor.py", ["--state", str(state / f"runs-{story}")]
elif story.startswith("H"):  # hangs (ignores SIGTERM, has a child)
    script, args = "hanging_agent.py", ["--pids", str(state / f"pids-{story}")]
elif story.startswith("K"):  # hangs on its first run only
    count = state / f"runs-{story}"
    runs = int(count.read_text()) if count.exists() else 0
    count.write_text(str(runs + 1))
    if runs == 0:
        script, args = "hanging_agent.py", ["--pids", str(state / f"pids-{story}")]
feed = tempfile.TemporaryFile()
feed.write(prompt.encode())
feed.seek(0)
os.dup2(feed.fileno(), 0)
os.execv(sys.executable, [sys.executable, str(agents / script), *args])
'''


def _agent_env(root: Path) -> dict[str, str]:
    state = root / "agent-state"
    state.mkdir(parents=True, exist_ok=True)
    dispatch = root / "dispatch.py"
    dispatch.write_text(DISPATCH)
    command = json.dumps([PYTHON, str(dispatch), str(AGENTS), str(state)])
    return {
        "IGS_AGENT__CODEX_COMMAND": command,
        "IGS_AGENT__CLAUDE_COMMAND": command,
        "IGS_AGENT__PI_COMMAND": command,
        # loop C's agent hangs until a later test cancels it: far beyond that test's start
        "IGS_AGENT__TIMEOUT_S": "600",
        "PATH": str(Path(PYTHON).parent) + os.pathsep + os.environ.get("PATH", ""),
        # the checks' nested pytest: skip this venv's plugins (half a second each)
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


def write_prd(path: Path, stories: list[dict]) -> Path:
    return _write_prd(path, stories, CHECKS)


def start_loop(env: DagsterEnv, project: Path, prd: Path, *extra: str) -> str:
    out = env.igs("loop", "start", "--project", str(project), "--prd", str(prd), *extra, check=True)
    return LOOP_ID.search(out.stdout).group(0)


def _kill_leftovers(state: Path) -> None:
    for pids in state.glob("pids-*"):
        for pid in map(int, pids.read_text().split()):
            if not pid_gone(pid):
                os.kill(pid, signal.SIGKILL)


@contextmanager
def loop_deployment(root: Path, *flags: str) -> Iterator[DagsterEnv]:
    """A deployment whose agent CLIs are the dispatcher above, its daemon running; `flags`:
    files made in the agents' state folder first (`buggy-S2`). Agents left over are killed."""
    env = DagsterEnv.create(root, **_agent_env(root))
    for flag in flags:
        (root / "agent-state" / flag).touch()
    env.start_daemon()
    try:
        yield env
    finally:
        env.stop_daemon()
        _kill_leftovers(root / "agent-state")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    with loop_deployment(tmp_path_factory.mktemp("loop-deployment")) as env:
        yield env


@pytest.fixture(scope="module")
def loops(deployment: DagsterEnv) -> dict[str, tuple[str, Path]]:
    """Four loops started at once on four projects: A (three stories), B (a story that
    fails its first attempt), C (an implementor that hangs, for cancel), D (its worktree
    folder is taken before the first run: a permanent failure)."""
    root = deployment.root
    f1 = S_ADD | {"id": "F1"}
    h1 = S_ADD | {"id": "H1"}
    started = {}
    for name, stories in (("A", [S_SLUG, S_WORDS, S_ADD]), ("B", [f1]), ("C", [h1]), ("D", [S_ADD])):
        project = make_project(root / f"project-{name}")
        prd = write_prd(root / f"prd-{name}.json", stories)
        started[name] = (start_loop(deployment, project, prd), project)
        if name == "D":  # long before the sensor's tick, the queue and a run worker get to it
            taken = deployment.data / "loops" / started[name][0] / "worktree"
            taken.mkdir()
            (taken / "someone-elses-file.txt").write_text("not a worktree\n")
    return started


def _state(env: DagsterEnv, loop_id: str) -> LoopState:
    return load_loop(env.data / "loops", loop_id)


def _runs(instance: dg.DagsterInstance, loop_id: str) -> list:
    """The loop's run records, oldest first."""
    return list(reversed(instance.get_run_records(filters=dg.RunsFilter(tags={LOOP_TAG: loop_id}))))


def wait_done(env: DagsterEnv, loop_id: str, timeout: float = 240) -> LoopState:
    instance = env.instance()

    def done():
        state = _state(env, loop_id)
        if state.status not in TERMINAL or (state.status == "complete" and state.next_step != "done"):
            return None
        runs = _runs(instance, loop_id)
        return state if all(r.dagster_run.status in FINISHED for r in runs) else None

    state = env.wait_for(done, timeout, f"loop {loop_id} to finish")
    assert state.status == "complete", f"{state.status}: {state.error}\n{env.igs('loop', 'status', loop_id).stdout}"
    return state


def _steps_started(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return [r.event_log_entry.dagster_event.step_key for r in records]


def _subjects(repo: Path, rev: str) -> list[str]:
    return git(repo, "log", "--format=%s", rev).splitlines()


# ---- intake ---------------------------------------------------------------------------------


def test_same_project_twice_is_refused_and_nothing_queued(deployment: DagsterEnv, loops) -> None:
    loop_a, project = loops["A"]
    assert _state(deployment, loop_a).status in ("queued", "running")  # A is still going
    queue = EventQueue(deployment.data / "queue.sqlite3")
    loops_dir = deployment.data / "loops"

    def loop_records() -> list[str]:  # none yet when this test runs first on its deployment
        return sorted(p.name for p in loops_dir.iterdir()) if loops_dir.is_dir() else []

    before = queue.last_id(), loop_records()
    again = deployment.igs(
        "loop", "start", "--project", str(project), "--prd", str(deployment.root / "prd-A.json")
    )
    assert again.returncode == 2
    assert re.fullmatch(
        rf"igs: error: project {re.escape(str(project.resolve()))} already has an active loop "
        rf"{loop_a} \((queued|running)\); cancel it or wait\n",
        again.stderr,
    ), again.stderr
    assert (queue.last_id(), loop_records()) == before


def test_invalid_prd_and_project_are_refused_with_the_reason(deployment: DagsterEnv, tmp_path) -> None:
    project = make_project(tmp_path / "project")
    queue = EventQueue(deployment.data / "queue.sqlite3")
    loops_dir = deployment.data / "loops"

    def loop_records() -> list[str]:  # none yet when this test runs first on its deployment
        return sorted(p.name for p in loops_dir.iterdir()) if loops_dir.is_dir() else []

    before = queue.last_id(), loop_records()
    bad = write_prd(tmp_path / "bad.json", [S_ADD | {"acceptance_criteria": []}])
    out = deployment.igs("loop", "start", "--project", str(project), "--prd", str(bad))
    assert out.returncode == 2
    assert out.stderr == (
        "igs: error: bad.json: stories[0].acceptance_criteria: List should have at least 1 item\n"
    )
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps(json.loads(write_prd(typo, [S_ADD]).read_text()) | {"storys": []}))
    out = deployment.igs("loop", "start", "--project", str(project), "--prd", str(typo))
    assert out.stderr == "igs: error: typo.json: storys: unknown field (not part of the PRD format)\n"
    good = write_prd(tmp_path / "good.json", [S_ADD])
    plain = tmp_path / "plain"
    plain.mkdir()
    out = deployment.igs("loop", "start", "--project", str(plain), "--prd", str(good))
    assert out.stderr == f"igs: error: project {plain} is not a git repository\n"
    out = deployment.igs("loop", "start", "--project", str(project), "--prd", str(good),
                         "--tool", "S9=codex")
    assert out.returncode == 2 and "tools: unknown key 'S9'" in out.stderr
    assert (queue.last_id(), loop_records()) == before


# ---- loops through sensors and the run queue ------------------------------------------------


def test_full_loop_of_three_stories(deployment: DagsterEnv, loops) -> None:
    loop_id, project = loops["A"]
    state = wait_done(deployment, loop_id)
    assert all(r.status == "passed" and len(r.attempts) == 1 for r in state.stories.values())

    instance = deployment.instance()
    runs = _runs(instance, loop_id)
    assert [r.dagster_run.job_name for r in runs] == ["loop_story"] * 3 + ["loop_finish"]
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert [r.dagster_run.tags["dagster/run_key"] for r in runs] == [
        f"loop:{loop_id}:{n}" for n in (0, 1, 2, 4)
    ]
    assert runs[0].dagster_run.tags["dagster/sensor_name"] == "igs_events"
    # each turn queued its next run itself, under the turn's run id (defs/loop/turns.py)
    assert [r.dagster_run.tags.get("igs/trigger") for r in runs] == ["loop.start"] + ["loop.push"] * 3
    assert [r.dagster_run.tags["igs/turn"] for r in runs] == [
        r.dagster_run.tags["dagster/run_key"] for r in runs
    ]
    assert [r.dagster_run.run_id for r in runs[1:]] == [
        turn_run_id(r.dagster_run.tags["igs/turn"]) for r in runs[1:]
    ]
    for record in runs:
        tags = record.dagster_run.tags
        assert tags[PROJECT_TAG] == project_hash(project) and tags[LOOP_TAG] == loop_id
        assert int(tags["dagster/max_runtime"]) > 2 * 600
    # runs of one loop never overlap (one at a time per project)
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.end_time <= later.start_time

    branch = f"agent-loop/{loop_id}"
    log = _subjects(project, branch)
    for sid, title in (("S1", "Add function in calc"), ("S2", "Slugify titles"), ("S3", "Count words")):
        assert log.count(f"feat: [{loop_id}] [{sid}] attempt-1 — {title}") == 1
        assert f"test: [{loop_id}] [{sid}] attempt-1 — tests from acceptance criteria" in log
        assert f"chore: [{loop_id}] [{sid}] attempt-1 — progress: PASS" in log
    assert f"chore: [{loop_id}] start — progress.txt" in log
    progress = git(project, "show", f"{branch}:progress.txt")
    for sid in ("S1", "S2", "S3"):
        assert progress.count(f"<!-- igs:{loop_id}/{sid}/attempt-1 -->") == 1
    assert progress.count("outcome: story PASSED after 1 attempt(s)") == 3
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "main"  # the checkout is untouched

    summary = (deployment.vault / "Loops" / f"{loop_id}.md").read_text()
    assert "status: complete" in summary and "passed: 3" in summary
    retro = (deployment.vault / "Loops" / f"{loop_id}-retro.md").read_text()
    assert "## Tools per story kind (this loop)" in retro
    playbook = json.loads((deployment.data / "loops" / "playbook.json").read_text())
    assert loop_id in playbook["loops"] and playbook["stats"]["codex"]["code"]["attempts"] >= 3

    table = deployment.igs("loop", "status", check=True).stdout
    row = next(line for line in table.splitlines() if line.startswith(loop_id))
    assert row.split()[1:4] == ["project-A", "complete", "3/0/3"]
    detail = deployment.igs("loop", "status", loop_id, check=True).stdout
    assert f"loop {loop_id}: complete" in detail
    for sid in ("S1", "S2", "S3"):
        story_row = next(line for line in detail.splitlines() if line.startswith(sid + " "))
        assert " passed " in story_row and " PASS " in story_row and " codex " in story_row
    for record in runs:
        assert record.dagster_run.run_id[:8] in detail
    as_json = json.loads(deployment.igs("loop", "status", loop_id, "--json", check=True).stdout)
    assert as_json["summary"]["passed"] == 3 and len(as_json["runs"]) == 4
    print(f"\n$ igs loop status\n{table}\n$ igs loop status {loop_id}\n{detail}")
    _report_timings(instance, runs, state)


def _report_timings(instance: dg.DagsterInstance, runs: list, state: LoopState) -> None:
    """Orchestration cost per turn: the sensor's pick-up (previous run's end -> next run
    created), the run queue (created -> launched), the run worker's start (launched -> run
    start), and per step the step time minus the role's own work (agents, checks)."""
    own: dict[str, float] = {}
    for record in state.stories.values():
        for attempt in record.attempts:
            for role, seconds in attempt.durations.items():
                own[role] = own.get(role, 0.0) + seconds
    steps: dict[str, float] = {}
    rows = []
    previous_end = None
    for record in runs:
        run_id = record.dagster_run.run_id
        for stat in instance.get_run_step_stats(run_id):
            steps[stat.step_key] = steps.get(stat.step_key, 0.0) + stat.end_time - stat.start_time
        starting = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.RUN_STARTING
        ).records[0].event_log_entry.timestamp
        created = record.create_timestamp.timestamp()
        pickup = f"{created - previous_end:5.1f}" if previous_end else "    -"
        rows.append(
            f"  {record.dagster_run.job_name:<12} pick-up {pickup}  queue {starting - created:5.1f}"
            f"  worker start {record.start_time - starting:5.1f}"
            f"  run {record.end_time - record.start_time:5.1f}"
        )
        previous_end = record.end_time
    review = own.get("review", 0.0) + own.get("checks", 0.0)
    overhead = {
        "implement": steps.get("loop_implement", 0.0) - own.get("implement", 0.0),
        "review": steps.get("loop_review", 0.0) - review,
        "judge": steps.get("loop_judge", 0.0) - own.get("judge", 0.0),
    }
    print("\nseconds per run of loop A:\n" + "\n".join(rows))
    print(
        "step time summed over the loop (s): "
        + ", ".join(f"{k.removeprefix('loop_')} {v:.2f}" for k, v in sorted(steps.items()))
        + "\nroles' own work (s): " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(own.items()))
        + "\nstep time beyond the role's own work, per story (s): "
        + ", ".join(f"{k} {v / len(state.stories):.2f}" for k, v in overhead.items())
    )


def test_fail_then_retry_runs_loop_attempt_without_the_planner(deployment: DagsterEnv, loops) -> None:
    loop_id, project = loops["B"]
    state = wait_done(deployment, loop_id)
    record = state.stories["F1"]
    assert record.status == "passed" and [a.verdict for a in record.attempts] == ["FAIL", "PASS"]

    instance = deployment.instance()
    runs = _runs(instance, loop_id)
    assert [r.dagster_run.job_name for r in runs] == ["loop_story", "loop_attempt", "loop_finish"]
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    first, retry, _ = (_steps_started(instance, r.dagster_run.run_id) for r in runs)
    assert first == ["loop_begin", "loop_plan", "loop_implement", "loop_review", "loop_judge"]
    assert retry == ["loop_begin", "loop_implement", "loop_review", "loop_judge"]

    log = _subjects(project, f"agent-loop/{loop_id}")
    assert f"chore: [{loop_id}] [F1] attempt-1 — progress: FAIL" in log
    assert f"feat: [{loop_id}] [F1] attempt-2 — Add function in calc" in log
    assert f"chore: [{loop_id}] [F1] attempt-2 — progress: PASS" in log
    second_prompt = deployment.data / "loops" / loop_id / "stories" / "F1" / "attempt-2" / "implement-prompt.md"
    assert "Judge feedback on attempt 1 (it FAILED: fix this first)" in second_prompt.read_text()


def test_loops_on_two_projects_run_side_by_side(deployment: DagsterEnv, loops) -> None:
    """Loop A's runs come and go while other projects' loops run (C's run hangs in its
    implementor until the cancel test): the per-project run limit keeps projects apart only."""
    instance = deployment.instance()
    wait_done(deployment, loops["A"][0])
    runs_a = _runs(instance, loops["A"][0])
    others = [r for name in ("B", "C") for r in _runs(instance, loops[name][0])]
    assert {r.dagster_run.tags[PROJECT_TAG] for r in runs_a}.isdisjoint(
        r.dagster_run.tags[PROJECT_TAG] for r in others
    )
    overlapping = [
        (a.dagster_run.run_id, b.dagster_run.run_id)
        for a in runs_a
        for b in others
        if b.start_time and a.start_time < (b.end_time or time.time()) and b.start_time < a.end_time
    ]
    assert overlapping, "no run of loop A overlapped a run of another project's loop"


def test_permanent_failure_marks_the_loop_failed(deployment: DagsterEnv, loops) -> None:
    loop_id, _ = loops["D"]
    state = deployment.wait_for(
        lambda: (s := _state(deployment, loop_id)).status == "failed" and s, 180, "loop D to fail"
    )
    (run,) = _runs(deployment.instance(), loop_id)
    assert run.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert run.dagster_run.tags.get("dagster/will_retry") == "false"
    taken = deployment.data / "loops" / loop_id / "worktree"
    assert state.error == (
        f"run {run.dagster_run.run_id[:8]} (loop_story) failed: loop_begin: {taken} exists and "
        f"is not the loop's worktree on agent-loop/{loop_id}"
    )
    stats = {s.step_key: s for s in deployment.instance().get_run_step_stats(run.dagster_run.run_id)}
    assert stats["loop_begin"].attempts == 1  # a permanent error is not retried
    status = deployment.igs("loop", "status", loop_id, "--no-runs", check=True).stdout
    assert status.startswith(f"loop {loop_id}: failed (run ")


def test_cancel_during_the_implementor_stops_agent_and_run(deployment: DagsterEnv, loops) -> None:
    loop_id, _ = loops["C"]
    pids = deployment.root / "agent-state" / "pids-H1"
    pid_file = deployment.data / "loops" / loop_id / "agent.pid"
    deployment.wait_for(lambda: pids.exists() and pid_file.exists(), 180, "the hanging implementor")
    agent_pid, child_pid = map(int, pids.read_text().split())
    recorded = json.loads(pid_file.read_text())
    assert recorded["pid"] == agent_pid and not pid_gone(child_pid)
    instance = deployment.instance()
    (running,) = _runs(instance, loop_id)
    assert running.dagster_run.status == dg.DagsterRunStatus.STARTED

    out = deployment.igs("loop", "cancel", loop_id, check=True).stdout
    assert out.startswith(f"loop {loop_id}: cancelled (its agent was stopped)")
    assert pid_gone(agent_pid) and pid_gone(child_pid) and not pid_file.exists()
    run = deployment.wait_for(
        lambda: (r := instance.get_run_by_id(running.dagster_run.run_id)).is_finished and r,
        60, "the run to end",
    )
    assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
    assert f"run {run.run_id[:8]} loop_story (was STARTED): " in out
    assert f"now {run.status.value}" in out
    state = _state(deployment, loop_id)
    assert state.status == "cancelled" and state.stop_reason == "cancelled by user"
    detail = deployment.igs("loop", "status", loop_id, check=True).stdout
    assert detail.startswith(f"loop {loop_id}: cancelled by user\n")
    assert len(_runs(instance, loop_id)) == 1
    status = deployment.igs("loop", "status", check=True).stdout
    assert re.search(rf"^{loop_id}\s+project-C\s+cancelled\s", status, re.M)


# ---- crash and re-execution (no daemon) -----------------------------------------------------


def loop_story_job():
    """The loop_story job, importable by path for `dg.reconstructable`."""
    from igs_dagster.definitions import defs

    return defs.resolve_job_def("loop_story")


@pytest.mark.timeout(300)
def test_kill_during_implementor_then_reexecute_from_failure(tmp_path, monkeypatch) -> None:
    agent_env = _agent_env(tmp_path)
    env = DagsterEnv.create(tmp_path / "deploy", **agent_env)
    project = make_project(tmp_path / "project-K")
    prd = write_prd(tmp_path / "prd-K.json", [S_ADD | {"id": "K1"}])
    loop_id = start_loop(env, project, prd)
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"ops": {"loop_begin": {"config": {"loop_id": loop_id}}}}))
    tags = json.dumps({LOOP_TAG: loop_id, PROJECT_TAG: project_hash(project)})
    worker = subprocess.Popen(
        [PYTHON, "-m", "dagster", "job", "execute", "-m", "igs_dagster.definitions",
         "-j", "loop_story", "-c", str(config), "--tags", tags],
        env=env.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pids = tmp_path / "agent-state" / "pids-K1"
    try:
        env.wait_for(lambda: pids.exists(), 180, "the implementor to run")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    agent_pid, child_pid = map(int, pids.read_text().split())
    try:
        # the agent (own session, ignores SIGTERM) and its child die with the run worker that
        # was SIGKILLed mid-agent (issue 24, item 6): its guard saw the worker's pipe close
        deadline = time.monotonic() + 30
        while not (pid_gone(agent_pid) and pid_gone(child_pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid_gone(agent_pid) and pid_gone(child_pid)
        instance = env.instance()
        (run,) = [r.dagster_run for r in instance.get_run_records()]
        assert _steps_started(instance, run.run_id) == ["loop_begin", "loop_plan", "loop_implement"]
        instance.report_run_failed(run)  # what run monitoring does for a dead run worker

        for key, value in env.env.items():
            if key.startswith(("IGS_", "DAGSTER_")) or key in agent_env:
                monkeypatch.setenv(key, value)
        result = dg.execute_job(
            dg.reconstructable(loop_story_job), instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(run.run_id, instance),
        )
        assert result.success
        assert _steps_started(instance, result.run_id) == ["loop_implement", "loop_review", "loop_judge"]
    finally:
        _kill_leftovers(tmp_path / "agent-state")

    state = load_loop(env.data / "loops", loop_id)
    assert state.iterations_used == 1  # the planner did not run again
    (attempt,) = state.stories["K1"].attempts
    assert attempt.verdict == "PASS" and state.next_step == "plan"
    log = _subjects(project, f"agent-loop/{loop_id}")
    assert log.count(f"feat: [{loop_id}] [K1] attempt-1 — Add function in calc") == 1
    files = git(project, "show", "--name-only", "--format=", attempt.commits[0]).split()
    assert "partial_work.py" not in files  # the killed run's half-done work was dropped
    assert any(note.startswith("worktree was not clean") for note in attempt.notes)
