"""Runs, steps, the inbox sensor and failed checks read through the webserver's GraphQL API,
for `igs status|runs` while `igs dev` runs: the same dicts as run_report (built with
run_format) without importing Dagster. Each function returns None when no webserver answers,
so the caller reads the instance instead."""

from __future__ import annotations

import json

from igs_dagster.cli import run_format
from igs_dagster.cli.stack import LOCATION
from igs_dagster.core import webserver
from igs_dagster.core.text import failure_reason, first_line, with_attempts
from igs_dagster.video.check_names import BLOCKING, CHECKS

REPOSITORY = "__repository__"  # the one repository of a Definitions object
RUN = "runId jobName status tags { key value } creationTime startTime endTime"
STEPS = "stepStats { stepKey status startTime endTime attempts { startTime } }"
FAILURE_EVENTS = """eventConnection { events { __typename
  ... on ExecutionStepFailureEvent { stepKey error { message className causes { message className } }
    failureMetadata { description } }
  ... on ExecutionStepUpForRetryEvent { stepKey }
  ... on RunFailureEvent { message } } }"""


def _runs(url: str, fields: str, limit: int, statuses: tuple[str, ...] | None = None) -> list[dict] | None:
    gql = (f"query Runs($filter: RunsFilter, $limit: Int) {{ runsOrError(filter: $filter, limit: $limit) "
           f"{{ __typename ... on Runs {{ results {{ {fields} }} }} ... on PythonError {{ message }} "
           f"... on InvalidPipelineRunsFilterError {{ message }} }} }}")
    data = webserver.query(url, gql, {"filter": {"statuses": list(statuses)} if statuses else {},
                                      "limit": limit})
    return None if data is None else webserver.require(data["runsOrError"], "Runs")["results"]


def _summary(run: dict) -> dict:
    tags = {t["key"]: t["value"] for t in run["tags"]}
    return run_format.run_summary(run["runId"], run["jobName"], run["status"], tags, run["creationTime"],
                       run["startTime"], run["endTime"])


def _reasons(events: list[dict]) -> dict[str, str]:
    """step key -> reason of its failure; "(run)" -> the run's failure (as failures.py)."""
    reasons: dict[str, str] = {}
    retried: dict[str, int] = {}
    for event in events:
        if event["__typename"] == "ExecutionStepUpForRetryEvent":
            step = event.get("stepKey") or "?"
            retried[step] = retried.get(step, 0) + 1
        elif event["__typename"] == "ExecutionStepFailureEvent":
            error, meta = event.get("error") or {}, event.get("failureMetadata") or {}
            chain = [error, *(error.get("causes") or [])] if error else []
            reasons[event.get("stepKey") or "?"] = failure_reason(
                meta.get("description"), [(e.get("message"), e.get("className")) for e in chain],
                run_format.MAX_ERROR_CHARS)
        elif event["__typename"] == "RunFailureEvent":
            reasons.setdefault("(run)", first_line(event.get("message"), run_format.MAX_ERROR_CHARS) or "run failed")
    return {step: with_attempts(reason, retried.get(step, 0) + 1) for step, reason in reasons.items()}


def _errors(url: str, run_ids: list[str]) -> dict[str, dict[str, str]] | None:
    """run id -> failure reasons, for several runs in one request."""
    if not run_ids:
        return {}
    parts = [f"r{i}: runOrError(runId: {json.dumps(run_id)}) {{ __typename ... on Run {{ {FAILURE_EVENTS} }} "
             f"... on RunNotFoundError {{ message }} ... on PythonError {{ message }} }}"
             for i, run_id in enumerate(run_ids)]
    data = webserver.query(url, "query Errors { " + " ".join(parts) + " }")
    if data is None:
        return None
    return {run_id: _reasons(webserver.require(data[f"r{i}"], "Run")["eventConnection"]["events"])
            for i, run_id in enumerate(run_ids)}


def recent_runs(url: str, limit: int = 20) -> list[dict] | None:
    """As run_report.recent_runs: the last `limit` runs, newest first, each with its steps."""
    runs = _runs(url, f"{RUN} {STEPS}", limit)
    if runs is None:
        return None
    failed = [r["runId"] for r in runs
              if r["status"] == "FAILURE" or any(s["status"] == "FAILURE" for s in r["stepStats"])]
    errors = _errors(url, failed)
    if errors is None:
        return None
    out = []
    for run in runs:
        reasons = errors.get(run["runId"], {})
        out.append({**_summary(run), "steps": [
            run_format.step_summary(s["stepKey"], s["status"], len(s["attempts"]), s["startTime"], s["endTime"],
                         reasons.get(s["stepKey"])) for s in run["stepStats"]]})
    return out


def _status_parts(url: str) -> dict | None:
    checks = " ".join(
        f"c{i}: assetCheckExecutions(assetKey: {{path: [{json.dumps(asset)}]}}, checkName: {json.dumps(name)}, "
        f"limit: 50) {{ status partition runId timestamp evaluation {{ description }} }}"
        for i, (asset, name) in enumerate(CHECKS))
    gql = f"""query Status($sensor: SensorSelector!, $active: RunsFilter, $failed: RunsFilter) {{
      instance {{ daemonHealth {{ allDaemonStatuses {{ lastHeartbeatTime }} }} }}
      sensorOrError(sensorSelector: $sensor) {{ __typename ... on Sensor {{ sensorState {{
        typeSpecificData {{ ... on SensorData {{ lastCursor lastTickTimestamp }} }}
        ticks(limit: 1) {{ timestamp status skipReason error {{ message }} }} }} }} }}
      active: runsOrError(filter: $active, limit: {run_format.ACTIVE_LIMIT}) {{ __typename ... on Runs {{ results {{ {RUN} }} }}
        ... on PythonError {{ message }} }}
      failed: runsOrError(filter: $failed, limit: {run_format.FAILURES_LIMIT * 2}) {{ __typename ... on Runs {{ results {{ {RUN} }} }}
        ... on PythonError {{ message }} }}
      {checks}
    }}"""
    return webserver.query(url, gql, {
        "sensor": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": run_format.INBOX_SENSOR},
        "active": {"statuses": list(run_format.ACTIVE)}, "failed": {"statuses": ["FAILURE"]},
    })


def _cursor_and_tick(sensor: dict) -> tuple[int | None, float | None, str | None]:
    """(handled event id, last tick time, why that tick did no work); all None when the sensor
    never ticked (no stored state: run_report finds none either)."""
    if sensor.get("__typename") != "Sensor":
        return None, None, None
    state = sensor["sensorState"]
    data = state.get("typeSpecificData") or {}
    ticks = state.get("ticks") or []
    if data.get("lastTickTimestamp") is None and not data.get("lastCursor") and not ticks:
        return None, None, None
    if not ticks:
        return run_format.inbox_cursor(data.get("lastCursor")), None, None
    tick = ticks[0]
    problem = run_format.tick_problem(tick.get("status"), tick.get("skipReason"),
                           (tick.get("error") or {}).get("message"))
    return run_format.inbox_cursor(data.get("lastCursor")), tick["timestamp"], problem


def _failed_checks(data: dict) -> list[dict]:
    """As defs/video/checks.failed_checks: partitions whose latest evaluation failed."""
    out = []
    for i, (_asset, name) in enumerate(CHECKS):
        seen: set[str | None] = set()
        for ex in data[f"c{i}"]:
            if ex["partition"] in seen or ex["status"] not in ("SUCCEEDED", "FAILED"):
                continue  # still planned (in progress, skipped, its run failed)
            seen.add(ex["partition"])
            if ex["status"] == "FAILED":
                out.append({"check": name, "partition": ex["partition"], "run_id": ex["runId"],
                            "blocking": name in BLOCKING,
                            "description": (ex.get("evaluation") or {}).get("description") or "failed",
                            "at": ex["timestamp"]})
    return out


def _not_fixed(url: str, failed: list[dict]) -> list[dict] | None:
    """As run_report._not_fixed: failed runs no later successful run of the same job and
    partition fixed, the newest FAILURES_LIMIT (one request for all of them)."""
    def partition(run: dict) -> str | None:
        return next((t["value"] for t in run["tags"] if t["key"] == run_format.PARTITION_TAG), None)

    asks = [(i, run) for i, run in enumerate(failed) if partition(run)]
    if not asks:
        return failed[:run_format.FAILURES_LIMIT]
    parts = [f"f{i}: runsOrError(filter: {{pipelineName: {json.dumps(run['jobName'])}, "
             f"tags: [{{key: {json.dumps(run_format.PARTITION_TAG)}, value: {json.dumps(partition(run))}}}], "
             f"statuses: [SUCCESS], createdAfter: {json.dumps(run['creationTime'])}}}, limit: 1) "
             "{ __typename ... on Runs { results { runId } } ... on PythonError { message } }"
             for i, run in asks]
    data = webserver.query(url, "query Fixed { " + " ".join(parts) + " }")
    if data is None:
        return None
    fixed = {i for i, _ in asks if webserver.require(data[f"f{i}"], "Runs")["results"]}
    return [run for i, run in enumerate(failed) if i not in fixed][:run_format.FAILURES_LIMIT]


def status(url: str, queue, settings) -> dict | None:
    """As run_report.status, through the webserver (None: it did not answer)."""
    from igs_dagster.cli.daemon_probe import local_daemon_pids

    data = _status_parts(url)
    if data is None:
        return None
    active = webserver.require(data["active"], "Runs")["results"]
    failed = _not_fixed(url, webserver.require(data["failed"], "Runs")["results"])
    if failed is None:
        return None
    errors = _errors(url, [r["runId"] for r in failed])
    if errors is None:
        return None
    cursor, tick, problem = _cursor_and_tick(data["sensorOrError"])
    beats = [d["lastHeartbeatTime"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]
             if d.get("lastHeartbeatTime")]
    return run_format.status_view(
        settings, queue,
        pids=local_daemon_pids(settings.dagster_home), last_tick=tick, sensor_problem=problem,
        last_heartbeat=max(beats, default=None), cursor=cursor,
        active=[_summary(r) for r in active],
        failures=[{**_summary(r), "errors": errors[r["runId"]]} for r in failed],
        checks=_failed_checks(data),
    )
