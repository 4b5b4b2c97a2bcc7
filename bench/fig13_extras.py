"""Figure 13: screenshots + subtitles (the `video_extras` step's work: has_video, scene
changes, frames, SRT + WebVTT) on a 5-minute clip (the sample repeated by stream copy: cheap,
so quick mode uses it too, once) as a share of the clip's transcription by tiny.en, in CPU
seconds (this process and its ffmpeg children; tiny.en 0.065 CPU-s per audio second).
Measured by bench/extras_overhead.py."""

from __future__ import annotations

from bench import extras_overhead
from bench.common import Record, load_text
from bench.context import Context

REPEATS = 28  # x 11 s = 5:08


def new_record(ctx: Context) -> Record:
    seconds = REPEATS * extras_overhead.SAMPLE_S
    return Record(13, f"Screenshots + subtitles on a {seconds / 60:.1f}-min clip vs its "
                  "transcription (CPU)", "≤ 3 %", 3.0, "%")


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    r = extras_overhead.main(REPEATS, ctx.runs, ctx.cache / "speech")
    rec.set_runs(r["cpu_pct_runs"])
    rec.details = r
    rec.note(f"{r['screenshots']} screenshot(s): {r['screenshots_cpu_s']:.2f} CPU-s "
             f"({r['screenshots_s']:.2f} s wall), subtitles {r['subtitles_cpu_s']:.3f} CPU-s, "
             f"vs transcription {r['transcribe_cpu_s_est']:.1f} CPU-s; wall share "
             f"{r['overhead_pct_of_transcription']:.1f} % (load {load_text(r['load_average'])})")
    return rec
