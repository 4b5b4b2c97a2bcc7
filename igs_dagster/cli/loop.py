"""`igs loop start|cancel|resume|status|clean`: the coding loop from the command line.

`start` goes through `intake.accept` like `POST /events` does (the PRD and the project are
checked now, the loop id is assigned and printed, the daemon's sensors run the loop).
`cancel` stops the loop's agent and its Dagster runs. `resume` continues a failed or
cancelled loop (loop/intake.py: `accept_resume`). `status` reads the loop records
(and, for one loop, its runs from the Dagster instance).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from igs_dagster.cli.common import print_answer
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings
from igs_dagster.core.text import one_line, table

CANCEL_WAIT_S = 30.0  # how long `cancel` waits for terminated runs to finish


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _duration(start: str | None, end: str | None) -> float | None:
    began = _parse_time(start)
    if began is None:
        return None
    finished = _parse_time(end) or datetime.now(UTC)
    return round((finished - began).total_seconds(), 1)


def _short_time(value: str | None) -> str:
    moment = _parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _tools(values: list[str]) -> dict[str, str]:
    tools: dict[str, str] = {}
    for value in values:
        key, sep, tool = value.partition("=")
        if not sep or not key.strip() or not tool.strip():
            raise PermanentError(f"--tool {value!r}: expected KEY=TOOL, e.g. S1=claude")
        tools[key.strip()] = tool.strip()
    return tools


# ---- start ----------------------------------------------------------------------------------


def cmd_loop_start(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core.events import LoopStart, LoopStartData
    from igs_dagster.intake import accept

    data = LoopStartData(
        project=Path(args.project).expanduser().absolute(),
        prd=Path(args.prd).expanduser().absolute(),
        max_attempts=args.max_attempts,
        max_iterations=args.max_iterations,
        tools=_tools(args.tool),
        push=args.push,
    )
    accepted = accept(LoopStart(name="loop.start", data=data), settings)
    print_answer(args, accepted.to_json(), lambda: accepted.message)
    return 0


# ---- cancel ---------------------------------------------------------------------------------


ACTIVE_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")


def _active_runs(instance, loop_id: str) -> list:
    import dagster as dg

    from igs_dagster.defs.loop.resources import LOOP_TAG

    statuses = [dg.DagsterRunStatus(value) for value in ACTIVE_STATUSES]
    return instance.get_runs(filters=dg.RunsFilter(tags={LOOP_TAG: loop_id}, statuses=statuses))


def _stop_runs(instance, runs: list) -> list[dict]:
    """Cancel queued runs, terminate running ones (a run whose role already stopped on the
    cancel flag ends by itself); wait up to CANCEL_WAIT_S for each to end."""
    import dagster as dg

    done: list[dict] = []
    for run in runs:
        current = instance.get_run_by_id(run.run_id) or run
        if current.is_finished:
            action = "ended on the cancel flag"
        elif current.status == dg.DagsterRunStatus.QUEUED:
            acted = instance.run_coordinator.cancel_run(run.run_id)
            action = "removed from the run queue" if acted else "left the queue already"
        else:
            try:
                acted = instance.run_launcher.terminate(run.run_id)
            except Exception as err:  # noqa: BLE001 - report it, go on with the next run
                action = f"terminate failed: {str(err).strip().splitlines()[0]}"
            else:
                action = "terminated" if acted else "ended on the cancel flag"
        done.append({"run_id": run.run_id, "job": run.job_name, "was": run.status.value,
                     "action": action})
    deadline = time.monotonic() + CANCEL_WAIT_S
    for item in done:
        while True:
            current = instance.get_run_by_id(item["run_id"])
            if current is None or current.is_finished or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        item["status"] = current.status.value if current else "unknown"
    return done


def cmd_loop_cancel(args: argparse.Namespace, settings: Settings) -> int:
    """Set the cancel flag and stop the agent (`control.cancel`), then end the loop's runs."""
    from igs_dagster.defs.instance import open_instance
    from igs_dagster.loop import control
    from igs_dagster.loop.env import LoopEnv
    from igs_dagster.loop.state import load_loop

    env = LoopEnv.from_settings(settings)
    load_loop(env.loops_dir, args.loop_id)  # an unknown id: one line, nothing done
    instance = open_instance(settings)
    before = _active_runs(instance, args.loop_id)
    result = control.cancel(env, args.loop_id, args.reason)
    # a run the chain sensor requested just before the flag was set is stopped too
    seen = {run.run_id for run in before}
    runs = before + [r for r in _active_runs(instance, args.loop_id) if r.run_id not in seen]
    result["runs"] = _stop_runs(instance, runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    agent = "its agent was stopped" if result["killed"] else "no agent was running"
    print(f"loop {args.loop_id}: {result['status']} ({agent})")
    for run in result["runs"]:
        print(f"run {run['run_id'][:8]} {run['job']} (was {run['was']}): {run['action']}; "
              f"now {run['status']}")
    if not result["runs"]:
        print("no active Dagster runs")
    return 0


# ---- resume ---------------------------------------------------------------------------------


def cmd_loop_resume(args: argparse.Namespace, settings: Settings) -> int:
    """Continue a failed, incomplete or cancelled loop from its first story that has not
    passed (`loop.intake.accept_resume`); the daemon's sensors run it as before."""
    from igs_dagster.loop.intake import accept_resume
    from igs_dagster.loop.state import TERMINAL, load_loop

    state = load_loop(settings.loops_dir, args.loop_id)  # an unknown id: one line, nothing done
    if state.status in TERMINAL:
        from igs_dagster.defs.instance import open_instance

        active = _active_runs(open_instance(settings), args.loop_id)
        if active:  # a cancel still stopping them, a run the UI re-executed
            raise PermanentError(
                f"loop {args.loop_id} still has {len(active)} active Dagster run(s) "
                f"({', '.join(r.run_id[:8] for r in active)}): wait for them to end"
            )
    accepted = accept_resume(args.loop_id, settings)
    print_answer(args, accepted.to_json(), lambda: accepted.message)
    return 0


# ---- status ---------------------------------------------------------------------------------


def _counts(state) -> dict[str, int]:
    tally = {"passed": 0, "skipped": 0, "failed": 0, "pending": 0}
    for record in state.stories.values():
        tally[record.status] += 1
    return tally


def loop_summary(state) -> dict:
    from igs_dagster.loop.outcome import last_failure, outcome

    tally = _counts(state)
    return {
        "loop_id": state.loop_id,
        "project": state.project,
        "status": outcome(state),
        "last_failures": {sid: reason for sid, record in state.stories.items()
                          if (reason := last_failure(record))},
        "passed": tally["passed"],
        "skipped": tally["skipped"],
        "failed": tally["failed"],
        "total": len(state.stories),
        "current_story": state.current_story,
        "current_attempt": state.current_attempt,
        "next": state.next_step,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "duration_s": _duration(state.started_at, state.finished_at),
        "error": state.error or state.stop_reason,
        "resume": state.resume,
    }


def format_loops(rows: list[dict]) -> str:
    if not rows:
        return "no loops yet (igs loop start --project PATH --prd prd.json)"
    body = []
    for row in rows:
        current = "-"
        if row["current_story"]:
            current = f"{row['current_story']} #{row['current_attempt']} ({row['next']})"
        elif row["next"] not in (None, "done"):
            current = f"({row['next']})"
        elif row["last_failures"]:
            sid, reason = next(iter(row["last_failures"].items()))
            current = f"{sid}: {reason}"[:60]
        body.append([
            row["loop_id"], Path(row["project"]).name, row["status"],
            f"{row['passed']}/{row['skipped']}/{row['total']}", current,
            _short_time(row["started_at"]), _seconds(row["duration_s"]),
            str(row["resume"] or "-"),
        ])
    return table(
        body, ["LOOP", "PROJECT", "STATUS", "PASS/SKIP/ALL", "CURRENT", "STARTED", "TIME",
               "RESUME"]
    )


def _loop_runs(settings: Settings, loop_id: str) -> list[dict]:
    import dagster as dg

    from igs_dagster.defs.instance import open_instance
    from igs_dagster.defs.loop.resources import LOOP_TAG, TURN_TAG

    instance = open_instance(settings)
    runs = []
    records = instance.get_run_records(filters=dg.RunsFilter(tags={LOOP_TAG: loop_id}))
    for record in reversed(records):  # oldest first
        run = record.dagster_run
        steps = {
            stat.step_key: round(stat.end_time - stat.start_time, 2)
            for stat in instance.get_run_step_stats(run.run_id)
            if stat.start_time and stat.end_time
        }
        runs.append({
            "run_id": run.run_id,
            "job": run.job_name,
            "status": run.status.value,
            # a run pushed through the webserver has no Dagster run key: its turn tag is the same
            "run_key": run.tags.get("dagster/run_key") or run.tags.get(TURN_TAG),
            "started": record.start_time,
            "duration_s": round(record.end_time - record.start_time, 2)
            if record.start_time and record.end_time else None,
            "steps_s": steps,
        })
    return runs


def loop_detail(settings: Settings, loop_id: str, with_runs: bool = True) -> dict:
    from igs_dagster.loop.state import load_loop

    state = load_loop(settings.loops_dir, loop_id)
    detail = state.model_dump(mode="json")
    detail["summary"] = loop_summary(state)
    detail["outcome"] = detail["summary"]["status"]
    from igs_dagster.core.redact import redact
    from igs_dagster.loop.agent_choice import recorded

    detail["agent_commands"] = {tool: [redact(a) for a in argv]
                                for tool, argv in recorded(settings.loops_dir, loop_id).items()}
    if state.status in ("complete", "failed", "cancelled"):
        from igs_dagster.loop.outcome import merge_hints

        detail["merge_hints"] = merge_hints(state)
    detail["runs"] = _loop_runs(settings, loop_id) if with_runs else []
    return detail


def _outcome_line(outcome: str, error: str | None) -> str:
    """`cancelled by user`, `failed (run 1a2b3c4d failed: ...)`: the reason once, not
    `cancelled (cancelled (cancelled by user))`."""
    if not error:
        return outcome
    while error.startswith(f"{outcome} (") and error.endswith(")"):  # older loop records
        error = error[len(outcome) + 2:-1]
    return error if error.startswith(outcome) else f"{outcome} ({error})"


def format_loop(detail: dict) -> str:
    summary = detail["summary"]
    lines = [
        f"loop {detail['loop_id']}: {_outcome_line(detail['outcome'], summary['error'])}",
        f"project  {detail['project']}",
        f"branch   {detail['branch']} (head {(detail['head_sha'] or '-')[:8]})",
        f"prd      {detail['prd_source']}",
        f"stories  {summary['passed']} passed, {summary['skipped']} skipped, "
        f"{summary['failed']} failed of {summary['total']}; next step: {detail['next_step'] or '-'}",
        f"started  {_short_time(detail['started_at'])}, time {_seconds(summary['duration_s'])}",
    ]
    for resume in detail.get("resumes") or []:
        lines.append(
            f"resumed  #{resume['number']} at {_short_time(resume['at'])} (was {resume['was']}"
            + (f": {resume['reason']}" if resume["reason"] else "") + "), from "
            + (resume["story"] or "-") + f" ({resume['next_step']})"
        )
    for tool, argv in (detail.get("agent_commands") or {}).items():
        lines.append(f"{tool:<8} {' '.join(argv)} (recorded at start)")
    for key in ("summary_note", "retro_note"):
        if detail.get(key):
            lines.append(f"{key.split('_')[0]:<8} {detail[key]}")
    rows = []
    for story in detail["stories"].values():
        if not story["attempts"]:
            rows.append([story["id"], one_line(story["title"], 30), story["status"], "-", "-", "-", "-",
                         "-", "-", "-", "-", "-"])
        for attempt in story["attempts"]:
            durations = attempt["durations"]
            commits = [c[:8] for c in attempt["commits"]]
            if attempt["test_commit"]:
                commits.append(attempt["test_commit"][:8] + " (test)")
            rows.append([
                story["id"], one_line(story["title"], 30), story["status"], str(attempt["number"]),
                attempt["tool"], attempt["reviewer_tool"] or "-", attempt["verdict"] or "-",
                *(_seconds(durations.get(k)) for k in ("implement", "review", "checks", "judge")),
                ", ".join(commits) or "-",
            ])
    lines += ["", table(rows, ["STORY", "TITLE", "STATUS", "TRY", "TOOL", "REVIEWER", "VERDICT",
                                "IMPLEMENT", "REVIEW", "CHECKS", "JUDGE", "COMMITS"])]
    if summary["last_failures"]:
        lines += ["", "last failure per story:"]
        lines += [f"  {sid}: {one_line(reason)}" for sid, reason in summary["last_failures"].items()]
    if detail.get("merge_hints"):
        lines += ["", *detail["merge_hints"]]
    if detail["runs"]:
        run_rows = [
            [run["run_id"][:8], run["job"], run["status"], run["run_key"] or "-",
             _seconds(run["duration_s"]),
             " ".join(f"{k.removeprefix('loop_')}={v:.1f}" for k, v in run["steps_s"].items())]
            for run in detail["runs"]
        ]
        lines += ["", table(run_rows, ["RUN", "JOB", "STATUS", "RUN KEY", "TIME", "STEPS (s)"])]
    return "\n".join(lines)


def cmd_loop_status(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.loop.state import list_loops

    if args.loop_id:
        detail = loop_detail(settings, args.loop_id, with_runs=not args.no_runs)
        print(json.dumps(detail, indent=2, default=str) if args.json else format_loop(detail))
        return 0
    rows = [loop_summary(state) for state in list_loops(settings.loops_dir)]
    print(json.dumps(rows, indent=2) if args.json else format_loops(rows))
    return 0


def cmd_loop_clean(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.loop.outcome import clean

    done = clean(settings.loops_dir, force=args.force)
    if args.json:
        print(json.dumps(done, indent=2))
        return 0
    for item in done:
        print(f"loop {item['loop_id']}: {item['action']}")
    if not done:
        print("nothing to clean: no finished loop has a worktree or branch left")
    return 0


# ---- parser ---------------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction) -> None:
    loop = sub.add_parser("loop", help="the autonomous coding loop (PRD in, commits out)")
    commands = loop.add_subparsers(dest="loop_command", required=True)

    p = commands.add_parser("start", help="check a PRD and queue a loop on a git project")
    p.add_argument("--project", required=True, help="the git repository to work on")
    p.add_argument("--prd", required=True, help="prd.json: stories, acceptance criteria, checks")
    p.add_argument("--max-attempts", type=int, default=3, help="attempts per story (default 3)")
    p.add_argument("--max-iterations", type=int, default=50,
                   help="attempts in the whole loop (default 50)")
    p.add_argument("--tool", action="append", default=[], metavar="KEY=TOOL",
                   help="agent override: a story id, a kind, implementor, * or reviewer "
                   "= pi|claude|codex (repeatable)")
    p.add_argument("--push", action="store_true", help="push the branch when the loop completes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_loop_start)

    p = commands.add_parser("cancel", help="stop a loop: its agent and its Dagster runs")
    p.add_argument("loop_id")
    p.add_argument("--reason", default="cancelled by user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_loop_cancel)

    p = commands.add_parser(
        "resume", help="continue a failed, incomplete or cancelled loop from its first story "
        "that has not passed (same branch, passed stories kept, settings as recorded at start)")
    p.add_argument("loop_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_loop_resume)

    p = commands.add_parser("status", help="all loops, or one loop's stories, attempts and runs")
    p.add_argument("loop_id", nargs="?")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-runs", action="store_true", help="skip the Dagster runs (faster)")
    p.set_defaults(func=cmd_loop_status)

    p = commands.add_parser("clean", help="remove finished loops' worktrees and merged branches")
    p.add_argument("--force", action="store_true", help="delete unmerged branches too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_loop_clean)
