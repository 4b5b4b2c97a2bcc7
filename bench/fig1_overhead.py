"""Figure 1: orchestration overhead. One ~5-minute clip from its run being queued to the
enriched note on disk through the real path (`igs send` -> sensor -> queued run -> run worker
materializing every asset) vs the same library calls in one Python script (bench.direct),
alternating, each pair side by side."""

from __future__ import annotations

import statistics

from bench import deploy
from bench.common import PYTHON, Record, paired_ratios, run_json
from bench.context import SAMPLE_MP4, Context


def _median_phases(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: round(statistics.median(row.get(k, 0.0) for row in rows), 3) for k in keys}


def new_record(ctx: Context) -> Record:
    return Record(1, "Orchestration overhead: queued run → enriched note vs one plain script",
                 "≤ 1.10×", 1.10, "×")  # issue 15: was 1.15


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    clip = ctx.speech(20 if ctx.quick else 300)
    root = ctx.folder("fig1")
    direct_env_root = root / "direct"
    dep, srv, instance = ctx.deployment()
    if not ctx.quick:
        ctx.log("figure 1: warm-up run (sample clip) through the deployment")
        deploy.ingest(dep, instance, srv.add(SAMPLE_MP4, "warmup.mp4"))
    direct_env = {
        **dep.env,
        "IGS_DATA_DIR": str(direct_env_root / "data"),
        "IGS_VAULT_DIR": str(direct_env_root / "vault"),
    }
    pipeline_s: list[float] = []
    direct_s: list[float] = []
    pipeline_phases: list[dict[str, float]] = []
    direct_phases: list[dict[str, float]] = []
    transcript_load: list[float] = []
    events: list[int] = []
    for i in range(ctx.runs):
        order = ("direct", "pipeline") if i % 2 == 0 else ("pipeline", "direct")
        for side in order:
            url = srv.add(clip.path, f"overhead-{side}-{i}.mp4")
            if side == "direct":
                out, wall = run_json([PYTHON, "-m", "bench.direct", url, deploy.key_for(url)], direct_env)
                direct_s.append(wall)
                direct_phases.append({**out["phases"], "interpreter start + exit": round(
                    wall - sum(out["phases"].values()), 3)})
                ctx.log(f"figure 1: direct script {wall:.1f} s")
            else:
                got = deploy.ingest(dep, instance, url)
                pipeline_s.append(got.queued_to_note_s)
                phases = got.timeline.phases()
                load = float(got.transcript.get("load_s") or 0.0)
                phases["  of which model load (in step transcript)"] = load
                phases["  of which transcription (in step transcript)"] = float(
                    got.transcript["elapsed_s"])
                pipeline_phases.append(phases)
                transcript_load.append(load)
                events.append(got.timeline.events)
                ctx.log(f"figure 1: pipeline {got.queued_to_note_s:.1f} s")
    rec.set_runs(paired_ratios(pipeline_s, direct_s))
    rec.details = {
        "clip_seconds": clip.seconds,
        "pipeline_s": [round(x, 2) for x in pipeline_s],
        "direct_s": [round(x, 2) for x in direct_s],
        "pipeline_phases_median_s": _median_phases(pipeline_phases),
        "direct_phases_median_s": _median_phases(direct_phases),
        "events_per_run": events,
    }
    extra = statistics.median(pipeline_s) - statistics.median(direct_s)
    pp = rec.details["pipeline_phases_median_s"]
    start = pp.get("launch → run worker started (process start, imports, code load)", 0.0)
    queue = pp.get("queued → dequeued (run coordinator)", 0.0)
    rec.note(
        f"{clip.seconds:.0f} s clip: pipeline {statistics.median(pipeline_s):.1f} s vs script "
        f"{statistics.median(direct_s):.1f} s (+{extra:.1f} s): dequeue {queue:.1f} s, run worker "
        f"start {start:.1f} s, {statistics.median(events):.0f} events per run"
    )
    return rec
