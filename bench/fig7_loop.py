"""Figure 7: coding loop overhead. A three-story loop on a real git project through the real
deployment (`igs loop start` -> the igs_events sensor -> one `loop_story` run per story, then
`loop_finish`), with the tests' instant stand-in agents and cheap real checks, twice: under
`igs dev` (code server, webserver, daemon) and with the daemon alone; in both each run's last
op queues the next run itself (defs/loop/turns.py; before issue 24 that went through `igs dev`'s
webserver, and with the daemon alone the sensor chained each run when it saw the previous one
end). Orchestration per story = its span (previous run's end, or
`igs loop start`, to its judge's end) minus the agents' and the checks' own time, split per
role; the same loop driven by the plain role functions (no Dagster) for comparison."""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from pathlib import Path

import dagster as dg

from bench import deploy
from bench.common import PYTHON, Record
from bench.context import Context

CHECKS = {"typecheck": "python -m compileall -q .", "test": "python -m pytest -q -p no:cacheprovider"}
LOOP_ID = re.compile(r"loop-\d{8}-\d{6}-[0-9a-f]{4}")
DISPATCH = '''\
"""Stand-in agent: the tests' implementor or reviewer, picked from the prompt."""
import os
import sys
import tempfile
from pathlib import Path

agents = Path(sys.argv[1])
prompt = sys.stdin.read()
script = "reviewer.py" if "# Write tests for story" in prompt else "implementor.py"
feed = tempfile.TemporaryFile()
feed.write(prompt.encode())
feed.seek(0)
os.dup2(feed.fileno(), 0)
os.execv(sys.executable, [sys.executable, str(agents / script)])
'''
ROLE_OPS = ("loop_begin", "loop_plan", "loop_implement", "loop_review", "loop_judge")


def agent_env(root: Path) -> dict[str, str]:
    from igs_dagster_tests.loop.conftest import AGENTS

    root.mkdir(parents=True, exist_ok=True)
    dispatch = root / "dispatch.py"
    dispatch.write_text(DISPATCH)
    command = json.dumps([PYTHON, str(dispatch), str(AGENTS)])
    return {
        "IGS_AGENT__CODEX_COMMAND": command, "IGS_AGENT__CLAUDE_COMMAND": command,
        "IGS_AGENT__PI_COMMAND": command, "IGS_AGENT__TIMEOUT_S": "120",
        "PATH": str(Path(PYTHON).parent) + os.pathsep + os.environ.get("PATH", ""),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # the checks' nested pytest: no venv plugins
    }


def _stories(quick: bool) -> list[dict]:
    from igs_dagster_tests.loop.conftest import S_ADD, S_SLUG, S_WORDS

    return [S_ADD] if quick else [S_ADD, S_SLUG, S_WORDS]


def _attempt_costs(state) -> dict[str, dict[str, float]]:
    """Per story (first attempt): agent and check seconds from the loop record."""
    out = {}
    for sid, record in state.stories.items():
        attempt = record.attempts[0]
        out[sid] = {
            "implement_agent": attempt.implement.duration_s if attempt.implement else 0.0,
            "review_agent": attempt.review.duration_s if attempt.review else 0.0,
            "checks": attempt.durations.get("checks", 0.0),
        }
    return out


def _dagster_loop(ctx: Context, root: Path, stack: bool) -> dict:
    """The loop through `igs dev`'s stack (`stack`, a deployment of its own) or through the
    daemon alone (the deployment the figures share)."""
    from bench.fig14_status import start_stack, stop_stack
    from igs_dagster.defs.loop.resources import LOOP_TAG
    from igs_dagster.loop.state import TERMINAL, load_loop
    from igs_dagster_tests.dagster_env import DagsterEnv
    from igs_dagster_tests.loop.conftest import make_project, write_prd

    stories = _stories(ctx.quick)
    if stack:
        dep = DagsterEnv.create(root / "dep", **agent_env(root))
        process = start_stack(dep)
        instance = dep.instance()
    else:
        dep, _srv, instance = ctx.deployment()
    try:
        project = make_project(root / "project")
        prd = write_prd(root / "prd.json", stories, CHECKS)
        started = time.time()
        out = dep.igs("loop", "start", "--project", str(project), "--prd", str(prd), check=True)
        loop_id = LOOP_ID.search(out.stdout).group(0)

        def done():
            state = load_loop(dep.data / "loops", loop_id)
            if state.status not in TERMINAL or (state.status == "complete" and state.next_step != "done"):
                return None
            runs = instance.get_run_records(filters=dg.RunsFilter(tags={LOOP_TAG: loop_id}))
            return state if all(r.dagster_run.status in deploy.FINISHED for r in runs) else None

        state = dep.wait_for(done, 900, f"loop {loop_id}")
    finally:
        if stack:
            stop_stack(process)
    assert state.status == "complete", f"loop {state.status}: {state.error}"
    runs = list(reversed(instance.get_run_records(filters=dg.RunsFilter(tags={LOOP_TAG: loop_id}))))
    lines = [deploy.timeline(instance, r.dagster_run.run_id) for r in runs]
    jobs = [r.dagster_run.job_name for r in runs]
    triggers = [r.dagster_run.tags.get("igs/trigger") for r in runs]

    costs = _attempt_costs(state)
    story_runs = [(job, tl) for job, tl in zip(jobs, lines, strict=True) if job == "loop_story"]
    per_story: list[dict[str, float]] = []
    prev_end = started
    sids = [s["id"] for s in sorted(stories, key=lambda s: s["priority"])]
    for sid, (_job, tl) in zip(sids, story_runs, strict=False):
        c = costs[sid]
        queued = tl.enqueued or tl.created
        row = {
            # pushed runs are queued before the previous run ends: the hand-off is what counts
            "previous run's end → run worker started": (tl.started or tl.created) - prev_end,
            "of which queued → run worker started": (tl.started or tl.created) - max(queued, prev_end),
        }
        for op in ROLE_OPS:
            if op in tl.steps:
                start, end = tl.steps[op]
                spent = end - start
                if op == "loop_implement":
                    spent -= c["implement_agent"]
                elif op == "loop_review":
                    spent -= c["review_agent"] + c["checks"]
                row[op.removeprefix("loop_")] = spent
        span_end = tl.steps["loop_judge"][1] if "loop_judge" in tl.steps else (tl.success or prev_end)
        row["between steps"] = (span_end - (tl.started or tl.created)) - sum(
            tl.steps[op][1] - tl.steps[op][0] for op in ROLE_OPS if op in tl.steps)
        total = span_end - prev_end - c["implement_agent"] - c["review_agent"] - c["checks"]
        row["total orchestration"] = total
        row["agents + checks"] = c["implement_agent"] + c["review_agent"] + c["checks"]
        per_story.append({k: round(v, 3) for k, v in row.items()})
        prev_end = tl.success or span_end
    finish = [tl for job, tl in zip(jobs, lines, strict=True) if job == "loop_finish"]
    finish_s = None
    if finish and story_runs:
        tl = finish[-1]
        finish_s = round((tl.success or 0) - (story_runs[-1][1].success or 0), 3)
    return {"loop_id": loop_id, "per_story": per_story, "finish_run_s": finish_s, "jobs": jobs,
            "triggers": triggers}


def _plain_loop(ctx: Context, root: Path) -> list[dict[str, float]]:
    """The same loop driven by the role functions in this process (no Dagster)."""
    from igs_dagster.loop import roles
    from igs_dagster.loop.driver import steps
    from igs_dagster.loop.state import load_loop
    from igs_dagster_tests.loop.conftest import loop_env, make_project, write_prd

    project = make_project(root / "project")
    prd = write_prd(root / "prd.json", _stories(ctx.quick), CHECKS)
    env = loop_env(root)
    loop_id = roles.start(env, {"project": str(project), "prd": str(prd)})["loop_id"]
    spans: list[tuple[str, str | None, float]] = []
    t0 = time.perf_counter()
    for step, result in steps(env, loop_id):
        spans.append((step, result.get("story"), time.perf_counter() - t0))
        t0 = time.perf_counter()
    costs = _attempt_costs(load_loop(env.loops_dir, loop_id))
    per_story: dict[str, dict[str, float]] = {}
    current = None
    for role, story, took in spans:
        if role == "plan" and story:
            current = story
        if current is None or role in ("complete", "retro") or (role == "plan" and not story):
            continue
        row = per_story.setdefault(current, {})
        c = costs[current]
        if role == "implement":
            took -= c["implement_agent"]
        elif role == "review":
            took -= c["review_agent"] + c["checks"]
        row[role] = round(took, 3)
    for row in per_story.values():
        row["total orchestration"] = round(sum(row.values()), 3)
    return list(per_story.values())


def new_record(ctx: Context) -> Record:
    count = len(_stories(ctx.quick))
    return Record(7, f"Coding loop: orchestration per story ({count} stories, instant agents)",
                 "≤ 10 s", 10.0, "s")


def _medians(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: round(statistics.median(row.get(k, 0.0) for row in rows), 3) for k in keys}


def _roles_text(per_role: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in per_role.items()
                     if k not in ("total orchestration", "agents + checks"))


def run(ctx: Context) -> Record:
    count = len(_stories(ctx.quick))
    rec = new_record(ctx)
    root = ctx.folder("fig7")
    ctx.log(f"figure 7: {count}-story loop under igs dev")
    dag = _dagster_loop(ctx, root / "igs-dev", stack=True)
    ctx.log(f"figure 7: {count}-story loop with the daemon alone")
    alone = _dagster_loop(ctx, root / "daemon", stack=False)
    ctx.log("figure 7: the same loop with the plain role functions")
    plain = _plain_loop(ctx, root / "plain")
    rec.set_runs([row["total orchestration"] for row in dag["per_story"]])
    per_role, alone_role, plain_role = _medians(dag["per_story"]), _medians(alone["per_story"]), _medians(plain)
    rec.details = {"igs_dev": dag, "igs_dev_per_role_median_s": per_role,
                   "daemon_alone": alone, "daemon_alone_per_role_median_s": alone_role,
                   "plain_per_story": plain, "plain_per_role_median_s": plain_role}
    rec.note(f"under `igs dev` (next run queued by the run before: "
             f"{dag['triggers'][1:].count('loop.push')} of {len(dag['triggers']) - 1} runs), "
             f"per story, median s: {_roles_text(per_role)}; agents + checks "
             f"{per_role.get('agents + checks', 0):.1f} s (excluded); finish run "
             f"(complete + retro) {dag['finish_run_s']} s per loop")
    rec.note(f"daemon alone (next run queued by the run before: "
             f"{alone['triggers'][1:].count('loop.push')} of {len(alone['triggers']) - 1} runs): "
             f"{alone_role.get('total orchestration', 0):.2f} s per story "
             f"({_roles_text(alone_role)})")
    rec.note(f"plain role functions: {plain_role.get('total orchestration', 0):.1f} s per story")
    return rec
