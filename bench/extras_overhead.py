"""Screenshots + subtitles on a 5-minute clip (the sample repeated), as the `video_extras` step
does them (has_video, scene changes, frames, SRT + WebVTT), against the clip's transcription
by tiny.en. CPU seconds (this process and its ffmpeg children) against tiny.en's 0.065 CPU-s
per audio second are the comparable figure on a shared machine; wall seconds against its
wall RTF (0.063) are given too. `python -m bench.extras_overhead`; figure 13 of `python -m bench`.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from igs_dagster.video import screenshots, subtitles
from igs_dagster_tests.media import SAMPLE_MP4, repeat_clip

WHISPER_RTF = 0.063
WHISPER_CPU_PER_S = 0.065
SAMPLE_S = 11.0


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(clip: Path, duration: float, work: Path) -> dict:
    """One pass of the step's work on `clip`; wall and CPU seconds."""
    segments = [{"start": i * 5.5, "end": i * 5.5 + 5.0,
                 "text": "And so my fellow Americans, ask not what your country can do for you."}
                for i in range(int(duration / 5.5))]
    media = work / clip.name
    if not media.exists():
        media.symlink_to(clip)
    t0, c0 = time.perf_counter(), _cpu()
    shots = []
    if screenshots.has_video(media):
        shots = screenshots.take_screenshots(media, work / "vault", "clip", duration,
                                             [(30, "a"), (200, "b")])
    t1, c1 = time.perf_counter(), _cpu()
    subtitles.write_subtitles(media, segments, "en")
    t2, c2 = time.perf_counter(), _cpu()
    return {"screenshots": len(shots), "screenshots_s": t1 - t0, "screenshots_cpu_s": c1 - c0,
            "subtitles_s": t2 - t1, "subtitles_cpu_s": c2 - c1}


def main(repeats: int = 28, runs: int = 3, cache: Path | None = None) -> dict:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(cache) if cache else Path(tmp)
        clip = repeat_clip(SAMPLE_MP4, repeats, folder / f"sample-x{repeats}.mp4")
        duration = repeats * SAMPLE_S  # 28 x 11 s = 5:08
        passes = []
        for i in range(runs):
            work = Path(tmp) / f"run{i}"
            work.mkdir()
            passes.append(measure(clip, duration, work))
    med = {key: statistics.median(p[key] for p in passes) for key in passes[0]}
    wall = med["screenshots_s"] + med["subtitles_s"]
    cpu = med["screenshots_cpu_s"] + med["subtitles_cpu_s"]
    return {
        "clip_s": duration, "runs": runs, "screenshots": int(med["screenshots"]),
        "screenshots_s": round(med["screenshots_s"], 3),
        "screenshots_cpu_s": round(med["screenshots_cpu_s"], 3),
        "subtitles_s": round(med["subtitles_s"], 4),
        "subtitles_cpu_s": round(med["subtitles_cpu_s"], 4),
        "transcribe_s_est": round(duration * WHISPER_RTF, 1),
        "transcribe_cpu_s_est": round(duration * WHISPER_CPU_PER_S, 1),
        "overhead_pct_of_transcription": round(100 * wall / (duration * WHISPER_RTF), 2),
        "overhead_cpu_pct_of_transcription": round(100 * cpu / (duration * WHISPER_CPU_PER_S), 2),
        "cpu_pct_runs": [round(100 * (p["screenshots_cpu_s"] + p["subtitles_cpu_s"])
                               / (duration * WHISPER_CPU_PER_S), 2) for p in passes],
        "load_average": [round(x, 2) for x in load],
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=1)
    print()
