"""Screenshots + subtitles on a 5-minute clip (the sample repeated), against the clip's
transcription time at tiny.en's measured RTF (0.063). `python -m bench.extras_overhead`."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from igs_dagster.video import screenshots, subtitles
from igs_dagster_tests.media import SAMPLE_MP4, repeat_clip

WHISPER_RTF = 0.063


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        clip = repeat_clip(SAMPLE_MP4, 28, Path(tmp) / "clip.mp4")  # 28 x 11 s = 5:08
        duration = 28 * 11.0
        segments = [{"start": i * 5.5, "end": i * 5.5 + 5.0,
                     "text": "And so my fellow Americans, ask not what your country can do for you."}
                    for i in range(int(duration / 5.5))]
        t0 = time.perf_counter()
        shots = screenshots.take_screenshots(clip, Path(tmp) / "vault", "clip", duration,
                                             [(30, "a"), (200, "b")])
        shots_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        subtitles.write_subtitles(clip, segments, "en")
        subs_s = time.perf_counter() - t0
    transcribe_s = duration * WHISPER_RTF
    return {"clip_s": duration, "screenshots": len(shots), "screenshots_s": round(shots_s, 2),
            "subtitles_s": round(subs_s, 3), "transcribe_s_est": round(transcribe_s, 1),
            "overhead_pct_of_transcription": round(100 * (shots_s + subs_s) / transcribe_s, 1)}


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=1)
    print()
