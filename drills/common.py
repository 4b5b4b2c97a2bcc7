"""What every drill shares: the result record, a loopback media server, a fresh deployment
whose storage is created before any daemon process touches it, and the counting that decides
"materialized / duplicates / lost" from the Dagster instance and the vault.

Counting rules (the same for every drill):
- materialized: videos whose five assets each have a materialization and whose note exists;
- duplicates: videos with any asset materialized more than once, or more than one note;
- lost: videos sent that never got their note (sent - materialized).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg

from igs_dagster_tests.dagster_env import PYTHON, REPO, DagsterEnv, stray_temp_files
from igs_dagster_tests.media import SAMPLE_MP4, repeat_clip

ASSETS = ("video_download", "video_archive", "transcript", "vault_note", "enriched_summary")
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
ACTIVE = {
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
}


class DrillFailed(AssertionError):
    """A drill could not go on (a wait timed out, a precondition failed)."""


@dataclass
class Check:
    what: str
    passed: bool
    detail: str = ""


@dataclass
class DrillResult:
    number: int
    name: str
    sent: int = 0
    materialized: int = 0
    duplicates: int = 0
    lost: int = 0
    wall_s: float = 0.0
    checks: list[Check] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None and all(c.passed for c in self.checks)

    @property
    def outcome(self) -> str:
        if self.skipped is not None:
            return "skipped"
        return "pass" if self.ok else "FAIL"

    def check(self, passed: object, what: str, detail: object = "") -> bool:
        self.checks.append(Check(what, bool(passed), str(detail)))
        return bool(passed)

    def failures(self) -> list[str]:
        out = [f"{c.what}: {c.detail}" for c in self.checks if not c.passed]
        return out + ([self.error] if self.error else [])

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(ok=self.ok, outcome=self.outcome)
        return data


# ---------------------------------------------------------------------------------------------
# media


def make_long_clip(folder: Path, repeat: int = 6) -> Path:
    """~66 s of real speech: the 11 s sample six times (as the tests' `long_mp4`)."""
    return repeat_clip(SAMPLE_MP4, repeat, folder / "long-talk.mp4")


# ---------------------------------------------------------------------------------------------
# deployments


def new_deployment(root: Path, **env: str) -> DagsterEnv:
    """A DagsterEnv whose instance storage exists before any daemon process opens it (a daemon
    and its code server creating a fresh SQLite instance at the same moment can stamp two
    alembic heads into schedules.db). The `gpu` pool's limit comes from dagster.yaml."""
    deployment = DagsterEnv.create(root, **env)
    with opened(deployment) as instance:
        instance.get_runs(limit=1)
        list(instance.all_instigator_state())
    return deployment


@contextmanager
def opened(deployment: DagsterEnv) -> Iterator[dg.DagsterInstance]:
    """The deployment's instance, storage opened with its environment (Postgres password)."""
    instance = deployment.instance()
    try:
        yield instance
    finally:
        instance.dispose()


def send(deployment: DagsterEnv, *urls: str) -> list[str]:
    """`igs send` the URLs (one CLI call); return their partition keys."""
    out = deployment.igs("send", *urls, check=True, timeout=600).stdout
    keys = []
    for url in urls:
        key = deployment.igs("send", "--dry-run", url, check=True).stdout.split("\t")[0]
        keys.append(key)
    assert all(k in out for k in keys), out
    return keys


def dry_keys(deployment: DagsterEnv, *urls: str) -> list[str]:
    out = deployment.igs("send", "--dry-run", *urls, check=True).stdout
    return [line.split("\t")[0] for line in out.splitlines() if "\t" in line]


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str,
    deployment: DagsterEnv | None = None, every: float = 1.0,
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if deployment is not None and deployment.daemon is not None and deployment.daemon.poll() is not None:
            raise DrillFailed(f"daemon exited while waiting for {what}:\n{deployment.daemon_log()[-3000:]}")
        if time.monotonic() > deadline:
            tail = deployment.daemon_log()[-3000:] if deployment is not None else ""
            raise DrillFailed(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")
        time.sleep(every)


# ---------------------------------------------------------------------------------------------
# counting


def runs_by_key(instance: dg.DagsterInstance, keys: Iterable[str]) -> dict[str, list]:
    wanted = set(keys)
    out: dict[str, list] = {k: [] for k in wanted}
    for record in instance.get_run_records(filters=dg.RunsFilter(job_name="video_ingest")):
        key = record.dagster_run.tags.get("dagster/partition")
        if key in wanted:
            out[key].append(record)
    return out


def all_finished(instance: dg.DagsterInstance, keys: Iterable[str]) -> bool:
    """Every key has a successful run, or a failed one nobody will retry, and nothing active."""
    for records in runs_by_key(instance, keys).values():
        if not records or any(r.dagster_run.status in ACTIVE for r in records):
            return False
        if not any(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records):
            last = max(records, key=lambda r: r.create_timestamp)
            if last.dagster_run.tags.get("dagster/will_retry") == "true":
                return False
    return True


def materialization_counts(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, Counter]:
    """{asset: Counter(partition -> materializations)} for the given partitions."""
    counts: dict[str, Counter] = {}
    for asset in ASSETS:
        counter: Counter = Counter()
        cursor = None
        while True:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys),
                limit=1000, cursor=cursor,
            )
            for record in result.records:
                counter[record.partition_key] += 1
            if not result.has_more:
                break
            cursor = result.cursor
        counts[asset] = counter
    return counts


def note_paths(vault: Path) -> dict[str, list[Path]]:
    """{partition key: note files whose frontmatter names it}."""
    from igs_dagster.video.frontmatter import split_frontmatter

    found: dict[str, list[Path]] = {}
    folder = vault / "Resources" / "videos"
    if folder.is_dir():
        for path in sorted(folder.glob("*.md")):
            with suppress(Exception):
                key = str(split_frontmatter(path.read_text())[0].get("video_id"))
                found.setdefault(key, []).append(path)
    return found


def notes_by_key(vault: Path) -> Counter:
    return Counter({k: len(v) for k, v in note_paths(vault).items()})


def daily_links(vault: Path, keys: Iterable[str]) -> dict[str, int]:
    """How often each key's note is linked from the daily notes (expected: once)."""
    text = "".join(p.read_text() for p in (vault / "Daily").glob("*.md")) if (vault / "Daily").is_dir() else ""
    paths = note_paths(vault)
    return {k: sum(text.count(f"[[{p.stem}]]") for p in paths.get(k, [])) for k in keys}


def tally(result: DrillResult, deployment: DagsterEnv, keys: list[str]) -> dict:
    """Fill sent / materialized / duplicates / lost for `keys`; return the per-key breakdown."""
    with opened(deployment) as instance:
        counts = materialization_counts(instance, keys)
        runs = runs_by_key(instance, keys)
    notes = notes_by_key(deployment.vault)
    complete = [k for k in keys if all(counts[a][k] >= 1 for a in ASSETS) and notes[k] >= 1]
    doubled = sorted(
        k for k in keys if any(counts[a][k] > 1 for a in ASSETS) or notes[k] > 1
    )
    result.sent = len(keys)
    result.materialized = len(complete)
    result.duplicates = len(doubled)
    result.lost = len(keys) - len(complete)
    result.details.update(
        runs=sum(len(v) for v in runs.values()),
        successful_runs=sum(
            1 for v in runs.values() for r in v if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        ),
        notes=sum(notes[k] for k in keys),
    )
    if doubled:
        result.details["duplicated_keys"] = doubled[:10]
    missing = [k for k in keys if k not in complete]
    if missing:
        result.details["lost_keys"] = missing[:10]
    return {"counts": counts, "runs": runs, "notes": notes}


def step_keys_started(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return [r.event_log_entry.dagster_event.step_key for r in records]


def step_events(instance: dg.DagsterInstance, run_id: str, step_key: str) -> list[tuple[str, float]]:
    """(event type, timestamp) of one step's events, oldest first."""
    out = []
    for record in instance.get_records_for_run(run_id).records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.step_key == step_key:
            out.append((event.event_type_value, record.event_log_entry.timestamp))
    return out


def transcript_intervals(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> list[tuple[float, float, str]]:
    """(start, end, run id) of every transcript step attempt that ran in these runs."""
    out = []
    for run_id in run_ids:
        start = None
        for kind, ts in step_events(instance, run_id, "transcript"):
            if kind in ("STEP_START", "STEP_RESTARTED"):
                start = ts
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY") and start is not None:
                out.append((start, ts, run_id))
                start = None
    return sorted(out)


def overlaps(intervals: list[tuple[float, float, str]]) -> list[tuple]:
    return [
        (a, b) for a, b in zip(intervals, intervals[1:], strict=False) if b[0] < a[1]
    ]


def group_members(pgid: int) -> list[int]:
    """Our Python processes still in process group `pgid` (a dead daemon's code server and run
    workers); pids of anything else that might have reused the number are left out."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and cmdline == PYTHON:
            members.append(int(entry.name))
    return members


def kill_process_group(pgid: int, sig: int) -> list[int]:
    """Signal the members of a process group we started (see group_members); return them."""
    members = group_members(pgid) if Path("/proc").is_dir() else []
    for pid in members:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
    return members


__all__ = ["PYTHON", "REPO"]


def pool_waits(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> int:
    """How many steps of these runs waited for a pool slot ("Step blocked by limit for pool")."""
    waits = 0
    for run_id in run_ids:
        for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
            event = record.event_log_entry.dagster_event
            if event is not None and (event.message or "").startswith("Step blocked by limit for pool"):
                waits += 1
    return waits


def step_attempts(instance: dg.DagsterInstance, run_id: str, step_key: str) -> list[dict]:
    """Each attempt of a step: start time, end time and outcome (with the error's first line)."""
    attempts: list[dict] = []
    for record in instance.get_records_for_run(run_id).records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or event.step_key != step_key:
            continue
        kind = event.event_type_value
        if kind in ("STEP_START", "STEP_RESTARTED"):
            attempts.append({"start": entry.timestamp, "end": None, "outcome": None, "error": None})
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY") and attempts:
            attempts[-1].update(end=entry.timestamp, outcome=kind)
            data = event.event_specific_data
            error = getattr(data, "error", None)
            while error is not None and error.cls_name == "RetryRequestedFromPolicy" and error.cause:
                error = error.cause  # the step's own exception
            if error is not None:
                attempts[-1]["error"] = ((error.message or "").strip().splitlines() or [""])[0][:300]
    return attempts


def check_outcome(result: DrillResult, deployment: DagsterEnv, keys: list[str], found: dict) -> None:
    """The checks every drill over the shared deployment ends with: one note per video, linked
    once from the daily note, no temp file left anywhere, nothing lost and nothing done twice."""
    result.check(all(found["notes"][k] == 1 for k in keys), "one note per video")
    links = daily_links(deployment.vault, keys)
    result.check(all(v == 1 for v in links.values()), "each note linked once from the daily note",
                 {k: v for k, v in links.items() if v != 1})
    stray = stray_temp_files(deployment.data / "media", deployment.data / "archive", deployment.vault)
    result.check(not stray, "no temp files left", stray[:5])
    result.check(result.duplicates == 0 and result.lost == 0, "nothing lost, nothing twice")


def first_run(instance: dg.DagsterInstance, key: str) -> dg.DagsterRun | None:
    """The newest run of the video `key` (None until the sensor has requested one)."""
    records = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": key}))
    return records[0].dagster_run if records else None


def finished_run(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun | None:
    """The run once it succeeded or failed (None while it is still going)."""
    run = instance.get_run_by_id(run_id)
    return run if run.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) else None
