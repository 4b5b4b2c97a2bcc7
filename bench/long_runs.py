"""The runs figures 4 and 6 share: a trivial video (the 11 s sample), 1 minute and a long clip
(60 minutes by default) of speech, each through the real deployment (`igs send` -> run), with
what each run added to the instance and the run worker's peak memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from bench import deploy
from bench.common import wer
from bench.context import SAMPLE_MP4, Context


@dataclass
class RunCost:
    label: str
    seconds: float  # media length
    run_id: str
    events: int
    event_bytes: int  # the run's event log entries as stored (serialized JSON)
    engine_logs: int  # of which log lines (context.log / Dagster's own)
    compute_log_bytes: int  # captured stdout/stderr of the run worker
    output_bytes: int  # asset values kept in Dagster's storage (none: claim files, defs/video/claims.py)
    run_bytes: int  # the run record (serialized DagsterRun)
    disk_bytes: int  # the run's event-log shard + index/run database growth + files above
    peak_rss_mb: float | None
    transcript_bytes: int  # the transcript JSON in the data folder (not in Dagster)
    transcription_s: float
    wer: float | None

    @property
    def logical_bytes(self) -> int:
        return self.event_bytes + self.compute_log_bytes + self.output_bytes + self.run_bytes


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _tree(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _watch(dep, instance, keys: list[str], timeout: float) -> dict[str, float | None]:
    """Peak RSS (VmHWM) of each key's run worker, polled until every one has exited."""
    import time

    from bench.common import peak_rss_mb

    pids: dict[str, int | None] = dict.fromkeys(keys)
    peaks: dict[str, float | None] = dict.fromkeys(keys)
    gone: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(gone) < len(keys) and time.monotonic() < deadline:
        for key in keys:
            if key in gone:
                continue
            runs = deploy.runs_for(instance, key)
            if pids[key] is None and runs:
                pids[key] = deploy.run_pid(instance, runs[0].dagster_run.run_id)
            if pids[key] is not None:
                value = peak_rss_mb(pids[key])
                if value is None:
                    gone.add(key)
                else:
                    peaks[key] = value
            elif runs and runs[0].dagster_run.status in deploy.FINISHED:
                gone.add(key)
        time.sleep(0.2)
    return peaks


def _cost(dep, instance, key: str, label: str, seconds: float, text: str | None,
          peak: float | None) -> RunCost:
    record = deploy.wait_run(dep, instance, key, timeout=60)
    run_id = record.dagster_run.run_id
    tl = deploy.timeline(instance, run_id)
    out = deploy.step_output(dep, "transcript", key)
    outputs = sum(_size(dep.home / "storage" / step / key) for step in deploy.STEPS)
    compute = _tree(dep.home / "storage" / run_id)
    shard = _size(dep.home / "history" / "runs" / f"{run_id}.db")
    transcript = dep.data / "media" / key / "transcript.json"
    hyp = json.loads(transcript.read_text(encoding="utf-8"))["text"]
    return RunCost(
        label, seconds, run_id, tl.events, tl.event_bytes, tl.engine_logs, compute, outputs,
        len(dg.serialize_value(record.dagster_run)), shard + compute + outputs, peak,
        _size(transcript), float(out["elapsed_s"]), round(wer(text, hyp), 4) if text else None,
    )


def long_runs(ctx: Context) -> dict[str, RunCost]:
    """Measured once per invocation, shared by figures 4 and 6: the three videos are sent
    together (one `igs send`); the `gpu` pool transcribes them one at a time."""
    if "long_runs" in ctx.shared:
        return ctx.shared["long_runs"]
    one = ctx.speech(20 if ctx.quick else 60, seed=4)
    long = ctx.speech(ctx.long_minutes * 60, seed=1)
    dep, srv, instance = ctx.deployment()
    clips = {"trivial": (SAMPLE_MP4, 11.0, None), "short": (one.path, one.seconds, one.text),
             "long": (long.path, long.seconds, long.text)}
    urls = {label: srv.add(path, f"claim-{label}.mp4") for label, (path, _, _) in clips.items()}
    keys = {label: deploy.key_for(url) for label, url in urls.items()}
    ctx.log(f"long runs: the sample, {one.seconds:.0f} s and {long.seconds:.0f} s of speech, sent together")
    dep.igs("send", *urls.values(), check=True)
    peaks = _watch(dep, instance, list(keys.values()), timeout=7200)
    runs = {
        label: _cost(dep, instance, keys[label], label, seconds, text, peaks[keys[label]])
        for label, (_, seconds, text) in clips.items()
    }
    ctx.shared["long_runs"] = runs
    return runs
