"""Figure 3: backfill throughput. Several clips as one Dagster backfill (`dagster job backfill`,
the run queue launching up to max_concurrent_runs run workers): downloads, archive copies and
notes overlap with transcription while the `gpu` pool keeps transcription strictly one at a
time. Wall time (backfill created -> last enriched note) vs the sum of the transcript steps +
one download; the model is loaded once per process that transcribes."""

from __future__ import annotations

import statistics
import time

from bench import deploy
from bench.common import Record
from bench.context import Context
from igs_dagster.core.inbox import EventQueue, Source


def new_record(ctx: Context) -> Record:
    return Record(3, "Backfill throughput: wall time vs Σ transcriptions + one download",
                 "≤ 1.15×", 1.15, "×")


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    count, seconds = (2, 10) if ctx.quick else (8, 90)
    clips = [ctx.speech(seconds, seed=10 + i) for i in range(count)]
    dep, srv, instance = ctx.deployment()
    urls = [srv.add(c.path, f"backfill-{i}.mp4") for i, c in enumerate(clips)]
    keys = [deploy.key_for(u) for u in urls]
    queue = EventQueue(dep.data / "queue.sqlite3")
    for key, url in zip(keys, urls, strict=True):
        queue.register_source(Source(key, "url", url, "web", None))
    instance.add_dynamic_partitions("videos", keys)
    ctx.log(f"figure 3: backfill of {count} × {seconds} s clips")
    started = time.time()
    dep.dagster(
        "job", "backfill", "-m", "igs_dagster.definitions", "-j", "video_ingest",
        "--partitions", ",".join(keys), "--noprompt", check=True, timeout=600,
    )
    backfills = instance.get_backfills()
    created = backfills[0].backfill_timestamp if backfills else started
    records = [deploy.wait_run(dep, instance, k, timeout=3600) for k in keys]
    notes = [deploy.note_for(dep.vault, k) for k in keys]
    ends = [deploy.wait_file(n, "enriched_by: builtin", 60) for n in notes if n]
    wall = max(ends) - created
    lines = [deploy.timeline(instance, r.dagster_run.run_id) for r in records]
    outputs = [deploy.step_output(dep, "transcript", k) for k in keys]
    pids = [deploy.run_pid(instance, r.dagster_run.run_id) for r in records]

    transcribe_steps = sorted(t.steps["transcript"] for t in lines)
    step_s = [end - start for start, end in transcribe_steps]
    downloads = [t.steps["video_download"][1] - t.steps["video_download"][0] for t in lines]
    overlaps = sum(1 for a, b in zip(transcribe_steps, transcribe_steps[1:], strict=False) if b[0] < a[1])
    gaps = [b[0] - a[1] for a, b in zip(transcribe_steps, transcribe_steps[1:], strict=False)]
    ideal = sum(step_s) + statistics.median(downloads)
    rec.set_runs([wall / ideal])
    loads = sum(int(o.get("model_loads") or 0) for o in outputs)
    processes = len(set(pids))
    rec.details = {
        "clips": count, "clip_seconds": seconds, "wall_s": round(wall, 2),
        "transcript_steps_s": [round(x, 2) for x in step_s],
        "transcription_s": [o["elapsed_s"] for o in outputs],
        "model_load_s": [o.get("load_s") for o in outputs],
        "download_steps_s": [round(x, 2) for x in downloads],
        "handoff_gaps_s": [round(x, 2) for x in gaps],
        "overlapping_transcriptions": overlaps,
        "model_loads": loads, "processes_that_transcribed": processes,
        "first_run_queued_to_transcript_start_s": round(transcribe_steps[0][0] - created, 2),
        "last_transcript_end_to_last_note_s": round(max(ends) - transcribe_steps[-1][1], 2),
    }
    rec.note(
        f"{count} × {seconds} s clips: wall {wall:.1f} s vs Σ transcript steps {sum(step_s):.1f} s "
        f"+ download {statistics.median(downloads):.1f} s; transcriptions overlapping: {overlaps}; "
        f"gaps between transcriptions median {statistics.median(gaps) if gaps else 0:.1f} s "
        f"(max {max(gaps) if gaps else 0:.1f}); model loads {loads} in {processes} processes"
    )
    if overlaps:
        rec.met = False
        rec.note("transcriptions overlapped: the gpu pool did not hold")
    return rec

