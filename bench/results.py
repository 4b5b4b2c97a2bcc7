"""The results table (Markdown) printed by `python -m bench` and kept in bench/README.md."""

from __future__ import annotations

from pathlib import Path

from bench.common import Record, dur, machine_line

BEGIN = "<!-- bench:results -->"
END = "<!-- /bench:results -->"


def _record(data: dict) -> Record:
    return Record(**data)


def render_table(result: dict) -> str:
    date = result["date"]
    machine = machine_line(result["machine"])
    lines = [
        f"Measured {date} ({result['mode']} mode, {result['runs']} run(s) per side, "
        f"{result['total_seconds']:.0f} s in all) on {machine}.",
        "",
        "| # | Figure | Goal | Measured: median [range] | Met | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for data in result["figures"]:
        rec = _record(data)
        met = "—" if rec.met is None else ("yes" if rec.met else "**no**")
        notes = "; ".join(rec.notes) if not rec.skipped else rec.skipped
        notes = notes.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {rec.figure} | {rec.name} | {rec.goal} | {rec.shown()} | {met} | {notes} |")
    figures = {f["figure"]: f for f in result["figures"] if not f.get("skipped")}
    for number, section in ((1, _overhead), (2, _settings), (7, _loop), (11, _models)):
        if number in figures and figures[number].get("details"):
            lines += ["", *section(figures[number]["details"])]
    return "\n".join(lines)


def _overhead(d: dict) -> list[str]:
    pipe, direct = d.get("pipeline_phases_median_s", {}), d.get("direct_phases_median_s", {})
    out = [f"Figure 1, where the time goes (median seconds, {d.get('clip_seconds', 0):.0f} s clip):", "",
           "| Pipeline (queued → note) | s | Plain script | s |", "|---|---|---|---|"]
    left, right = list(pipe.items()), list(direct.items())
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ("", None)
        b = right[i] if i < len(right) else ("", None)
        out.append(f"| {a[0]} | {'' if a[1] is None else f'{a[1]:.2f}'} | {b[0]} | "
                   f"{'' if b[1] is None else f'{b[1]:.2f}'} |")
    return out


def _settings(d: dict) -> list[str]:
    sweep = d.get("sweep") or {}
    clips = list(dict.fromkeys(c for row in sweep.values() for c in row))
    out = [f"Figure 2, decoding settings (faster-whisper {d.get('device')}; RTF = seconds per second "
           "of audio, WER, windows re-decoded by the temperature fallback):", "",
           "| Setting | " + " | ".join(clips) + " |", "|---|" + "---|" * len(clips)]
    for name, row in sweep.items():
        cells = []
        for clip in clips:
            v = row.get(clip)
            if v is None:
                cells.append("—")
                continue
            extra = v["words"] - v["reference_words"]
            words = f" ({extra:+d} words)" if extra else ""
            cells.append(f"RTF {v['rtf']:.3f}, WER {v['wer']:.1%}{words}, fallback {v['fallback_windows']}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def _loop(d: dict) -> list[str]:
    columns = (("`igs dev` (pushed)", d.get("igs_dev_per_role_median_s", {})),
               ("daemon alone (sensor)", d.get("daemon_alone_per_role_median_s", {})),
               ("Plain role functions", d.get("plain_per_role_median_s", {})))
    out = ["Figure 7, orchestration per story by role (median seconds; agents and checks excluded):",
           "", "| Role | " + " | ".join(name for name, _ in columns) + " |",
           "|---" * (len(columns) + 1) + "|"]
    for key in dict.fromkeys(k for _, values in columns for k in values):
        cells = [values.get(key) for _, values in columns]
        out.append(f"| {key} | " + " | ".join("" if v is None else f"{v:.2f}" for v in cells) + " |")
    return out


def _models(d: dict) -> list[str]:
    clips = d.get("clips") or {}
    out = ["Figure 11, models and languages (faster-whisper on CPU, int8, beam 5, language detected; "
           "RTF = wall seconds per second of audio, CPU = CPU seconds per second of audio, peak = "
           "VmHWM of a fresh process: model, warm-up on jfk.wav, the clip):", "",
           "| Model | Clip | RTF | CPU | Peak MB | WER | Language |", "|---|---|---|---|---|---|---|"]
    for model, rows in clips.items():
        for clip, r in rows.items():
            out.append(f"| {model} | {clip} | {r['rtf']:.3f} | {r['cpu_per_audio_s']:.3f} | "
                       f"{r['peak_mb']:.0f} | {r['wer']:.1%} | {r['language']} |")
    for model, modes in (d.get("long") or {}).items():
        for mode, r in modes.items():
            name = ("batched (BatchedInferencePipeline, batch "
                    f"{d.get('batch_size')}, VAD)") if mode == "batched" else "sequential (streamed)"
            out.append(f"| {model} | {dur(d.get('long_clip_seconds', 0))} English, "
                       f"{name} | {r['rtf']:.3f} | {r['cpu_per_audio_s']:.3f} | "
                       f"{r['peak_mb']:.0f} | {r['wer']:.1%} | {r['language']} |")
    return out


def update_readme(path: Path, result: dict) -> None:
    """Replace the text between the results markers (or append a results section)."""
    table = f"{BEGIN}\n{render_table(result)}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + table + tail
    else:
        text = text.rstrip() + ("\n\n" if text else "") + "## Results\n\n" + table + "\n"
    path.write_text(text, encoding="utf-8")
