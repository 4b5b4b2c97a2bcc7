"""Figure 11: models and languages. The bundled English-only `tiny.en` vs the multilingual `base`
(the optional extra `igs-dagster[multilingual]`), both faster-whisper int8 with beam 5 and the
language detected, through `transcribe_to_file` (what the transcript asset runs): real-time
factor, CPU seconds per audio second, peak memory (VmHWM of a fresh process per model and clip:
model load, a warm-up on jfk.wav, then the clip) and word error rate, on the JFK sample, on
generated English speech and on generated Spanish and German speech (espeak-ng, varied text).
Then faster-whisper's `BatchedInferencePipeline` (batch 8, its own VAD chunking) against the
streamed sequential transcription on a long clip (30 minutes in full mode), same model, each
in a fresh process. The headline is base's CPU seconds per audio second on generated English
speech (on a shared machine other processes inflate wall time, not the work; fig 2 does the
same). Quick mode: JFK and a few seconds of Spanish, and the batched pipeline for tiny.en on
20 s."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from bench.common import PYTHON, Record, dur, run_json, wer
from bench.context import JFK_TEXT, Context

JFK_WAV = Path(__file__).resolve().parent.parent / "igs_dagster_tests/fixtures/media/jfk.wav"
MODELS = ("tiny.en", "base")  # tiny.en = the bundled model
BATCH_SIZE = 8


def new_record(ctx: Context) -> Record:
    return Record(11, "Models and languages: tiny.en vs multilingual base (CPU int8, beam 5); "
                  "headline: base's CPU seconds per audio second on generated speech",
                  "≤ 0.35", 0.35, "CPU s/s")


def _cfg_model(model: str) -> str:
    return "bundled" if model == "tiny.en" else model


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    seconds = 5 if ctx.quick else 60
    clips = {"JFK (human, 11 s)": (str(JFK_WAV), JFK_TEXT)}
    for language, name in (("en", "English"), ("es", "Spanish"), ("de", "German")):
        if ctx.quick and language != "es":
            continue
        clip = ctx.speech(seconds, seed=4) if language == "en" else ctx.speech_in(language, seconds)
        clips[f"{name}, espeak ({clip.seconds:.0f} s)"] = (str(clip.path), clip.text)
    models_dir = str(ctx.cache / "models")
    out = ctx.folder("fig11")
    table: dict[str, dict] = {}
    for model in MODELS:
        for name, (path, text) in clips.items():
            ctx.log(f"figure 11: {model} on {name}")
            row = _child(ctx, {"mode": "sequential", "model": model, "models_dir": models_dir,
                               "path": path, "text": text, "out": str(out)})
            table.setdefault(model, {})[name] = row
    long = ctx.speech(20 if ctx.quick else 1800, seed=5)
    batched: dict[str, dict] = {}
    for model in MODELS if not ctx.quick else ("tiny.en",):
        for mode in ("sequential", "batched"):
            ctx.log(f"figure 11: {model} {mode} on {long.seconds:.0f} s")
            batched.setdefault(model, {})[mode] = _child(ctx, {
                "mode": mode, "model": model, "models_dir": models_dir,
                "path": str(long.path), "text": long.text, "out": str(out), "warm_up": False})
    rec.details = {"clips": table, "long_clip_seconds": long.seconds, "long": batched,
                   "batch_size": BATCH_SIZE}
    generated = [n for n in clips if "espeak" in n]
    rec.set_runs([table["base"][n]["cpu_per_audio_s"] for n in generated])
    for model, rows in table.items():
        rec.note(f"{model}: " + "; ".join(
            f"{name} RTF {r['rtf']:.3f}, {r['peak_mb']:.0f} MB, WER {r['wer']:.1%}, "
            f"language {r['language']}" for name, r in rows.items()))
    for model, modes in batched.items():
        seq, bat = modes["sequential"], modes["batched"]
        rec.note(f"{model} on {dur(long.seconds)}: sequential RTF {seq['rtf']:.3f} "
                 f"({seq['peak_mb']:.0f} MB, WER {seq['wer']:.1%}), batched RTF {bat['rtf']:.3f} "
                 f"({bat['peak_mb']:.0f} MB, WER {bat['wer']:.1%})")
    return rec


def _child(ctx: Context, spec: dict) -> dict:
    spec_path = ctx.work / "fig11" / f"spec-{time.monotonic_ns()}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    out, _ = run_json([PYTHON, "-m", "bench.fig11_models", str(spec_path)])
    ctx.log(f"  {json.dumps({k: v for k, v in out.items() if k != 'text'})}")
    return out


# ---- the child process: one model, one clip ---------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def child(spec: dict) -> dict:
    from igs_dagster.core.settings import TranscriberSettings
    from igs_dagster.video import audio, transcribe, transcript, whisper_backends

    cfg = TranscriberSettings(model=_cfg_model(spec["model"]), models_dir=Path(spec["models_dir"]),
                              compute_type="int8", beam_size=5, language=None)
    out = Path(spec["out"])
    tag = f"{spec['model']}-{spec['mode']}-{time.monotonic_ns()}"
    if spec.get("warm_up", True):  # the first call allocates: not part of any clip's figure
        transcribe.transcribe_to_file(JFK_WAV, out / f"{tag}-warm.json", cfg)
    duration = audio.media_seconds(Path(spec["path"])) or 0.0
    cpu, started = time.process_time(), time.perf_counter()
    if spec["mode"] == "sequential":
        info = transcribe.transcribe_to_file(Path(spec["path"]), out / f"{tag}.json", cfg)
        took = info.elapsed_s
        text = transcript.load_transcript(info.path)["text"]
        language, duration = info.language, info.duration
    else:
        from faster_whisper import BatchedInferencePipeline

        backend, model_path = whisper_backends.plan(cfg)
        model = whisper_backends.load_faster_whisper(model_path, cfg)
        cpu, started = time.process_time(), time.perf_counter()  # model load excluded, as above
        options = {**whisper_backends.faster_whisper_options(cfg), "vad_filter": True}
        segments, info = BatchedInferencePipeline(model).transcribe(
            spec["path"], batch_size=BATCH_SIZE, **options)
        text = " ".join(s.text.strip() for s in segments)
        took = time.perf_counter() - started
        language = info.language
    cpu_s = time.process_time() - cpu
    return {
        "model": spec["model"], "mode": spec["mode"], "seconds": round(duration, 1),
        "rtf": round(took / duration, 4), "cpu_per_audio_s": round(cpu_s / duration, 4),
        "peak_mb": round(_peak_mb(), 1), "wer": round(wer(spec["text"], text), 4),
        "language": language, "words": len(text.split()), "text": text[:300],
    }


if __name__ == "__main__":
    print(json.dumps(child(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
