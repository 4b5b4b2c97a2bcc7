"""Figure 6: memory. Peak resident memory (VmHWM) of the run worker that transcribes the long
clip with the default model, through the real deployment: the audio is decoded and transcribed
in pieces of a few minutes and segments are written as they come, so it must not grow with
the length. For comparison (full mode), what decoding the whole file and computing its Whisper
features at once (faster-whisper given the file) needs, without even transcribing."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

from bench.common import PYTHON, REPO, Record, dur
from bench.context import Context
from bench.long_runs import long_runs

WHOLE_FILE = """
import resource, sys
from faster_whisper.audio import decode_audio
from faster_whisper.feature_extractor import FeatureExtractor
audio = decode_audio(sys.argv[1], sampling_rate=16000)
FeatureExtractor()(audio)
"""


def _whole_file_peak_mb(path: str) -> float:
    """Peak RSS of a child that decodes `path` whole and extracts its features (ru_maxrss)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([PYTHON, "-c", WHOLE_FILE, path], cwd=REPO, check=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024  # ru_maxrss of the largest child so far, KB on Linux


def new_record(ctx: Context) -> Record:
    minutes = ctx.long_minutes
    return Record(6, f"Memory: peak RSS of the run worker transcribing {minutes:g} min of speech",
                 "≤ 1 GB", 1024.0, "MB")


def run(ctx: Context) -> Record:
    minutes = ctx.long_minutes
    rec = new_record(ctx)
    runs = long_runs(ctx)
    long, short, trivial = runs["long"], runs["short"], runs["trivial"]
    if long.peak_rss_mb is None:
        rec.skipped = "could not read the run worker's /proc status (Linux only)"
        return rec
    rec.set_runs([long.peak_rss_mb])
    rec.details = {
        "peak_rss_mb": {k: v.peak_rss_mb for k, v in runs.items()},
        "media_seconds": {k: v.seconds for k, v in runs.items()},
        "transcription_s": {k: v.transcription_s for k, v in runs.items()},
        "wer": {k: v.wer for k, v in runs.items()},
    }
    rec.note(
        f"run worker peak: {dur(trivial.seconds)} clip {trivial.peak_rss_mb:.0f} MB, "
        f"{dur(short.seconds)} {short.peak_rss_mb:.0f} MB, {dur(long.seconds)} "
        f"{long.peak_rss_mb:.0f} MB (WER {long.wer:.1%}, RTF {long.transcription_s / long.seconds:.3f})"
    )
    if not ctx.quick:
        clip = ctx.speech(minutes * 60, seed=1)
        ctx.log("figure 6: whole-file decoding + features, for comparison")
        whole = _whole_file_peak_mb(str(clip.path))
        rec.details["whole_file_decode_and_features_peak_mb"] = round(whole, 1)
        rec.note(f"decoding the whole file + its features at once (faster-whisper given the file, "
                 f"before any transcription): {whole:.0f} MB")
    return rec


if __name__ == "__main__":
    print(json.dumps({"peak_mb": _whole_file_peak_mb(sys.argv[1])}))
