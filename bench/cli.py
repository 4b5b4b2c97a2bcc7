"""`python -m bench`: measure the figures, print the table, write JSON and the README table.

    python -m bench                      # every figure, full size (about 15 minutes on 2 cores)
    python -m bench --quick              # tiny inputs (about 2 minutes); asserts nothing
    python -m bench --only 1,2 --json out.json
    python -m bench --readme README.md         # also rewrite the results table there

Each figure is a ratio or an amount measured side by side in this one invocation; the machine
is recorded with it. Exit status: 0 when every figure was measured (met or not), 1 when a
figure failed to run, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import Record, load_average, machine, now_iso
from bench.context import Context, use_bytecode_cache, warm_up
from bench.results import render_table, update_readme
from bench.speech import SpeechUnavailable

FIGURES = {
    1: "bench.fig1_overhead",
    2: "bench.fig2_transcription",
    3: "bench.fig3_backfill",
    4: "bench.fig4_claim_check",
    5: "bench.fig5_sensor",
    6: "bench.fig6_memory",
    7: "bench.fig7_loop",
    8: "bench.fig8_feeds",
    9: "bench.fig9_playlist",
    10: "bench.fig10_idle",
    11: "bench.fig11_models",
    12: "bench.fig12_search",
    13: "bench.fig13_extras",
    14: "bench.fig14_status",
}
NEEDS_SPEECH = {1, 2, 3, 4, 6, 9}


def _figures(text: str | None) -> list[int]:
    if not text:
        return sorted(FIGURES)
    try:
        chosen = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--only takes figure numbers like 1,3: {text!r}") from None
    unknown = [n for n in chosen if n not in FIGURES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"no such figure: {unknown or text!r} ({', '.join(map(str, FIGURES))})"
        )
    return chosen


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny inputs for CI; asserts nothing about time")
    p.add_argument("--only", type=_figures, default=None, metavar="N[,N]", help="figures to measure")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    p.add_argument("--readme", type=Path, metavar="PATH", help="rewrite the results table in this file")
    p.add_argument("--runs", type=int, default=None, help="repetitions per side (default 3, quick 1)")
    p.add_argument("--long-minutes", type=float, default=None,
                   help="length of the long transcript of figures 4 and 6 (default 60, quick 0.5)")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temp folder, removed)")
    p.add_argument("--cache", type=Path, help="generated speech and bytecode cache "
                   "(default $IGS_BENCH_CACHE or ~/.cache/igs-bench)")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="recompile every import in every process (PYTHONDONTWRITEBYTECODE as set)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    figures = args.only or sorted(FIGURES)
    from bench.speech import cache_dir

    cache = (args.cache or cache_dir()).absolute()
    cache.mkdir(parents=True, exist_ok=True)
    if not args.no_bytecode_cache:
        use_bytecode_cache(cache)
    own_work = args.work is None
    work = Path(tempfile.mkdtemp(prefix="igs-bench-")) if own_work else args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        quick=args.quick, work=work, cache=cache,
        runs=args.runs or (1 if args.quick else 3),
        long_minutes=args.long_minutes or (0.5 if args.quick else 60.0),
        verbose=not args.quiet,
    )
    started = time.perf_counter()
    info = machine()
    ctx.log(f"machine: {info['cpu']}, {info['cores']} cores; work folder {work}")
    ctx.log(f"warm-up imports: {warm_up():.1f} s")
    records: list[Record] = []
    failed = False
    with ctx.stack:
        failed = _measure(ctx, figures, records)
    ctx.log(f"done in {time.perf_counter() - started:.0f} s")

    info["load_average_at_end"] = load_average()
    result = {
        "date": now_iso(),
        "mode": "quick" if args.quick else "full",
        "runs": ctx.runs,
        "machine": info,
        "total_seconds": round(time.perf_counter() - started, 1),
        "figures": [r.to_json() for r in records],
    }
    if args.only and args.json and args.json.is_file():
        result = _merge(json.loads(args.json.read_text(encoding="utf-8")), result)
    print(render_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.readme:
        update_readme(args.readme, result)
    if own_work and os.environ.get("IGS_BENCH_KEEP") != "1":
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def _merge(previous: dict, result: dict) -> dict:
    """`--only` with an existing `--json` file: the figures measured now replace theirs, the
    others are kept, and the header says which were measured when."""
    measured = {f["figure"] for f in result["figures"]}
    kept = [f for f in previous.get("figures", []) if f["figure"] not in measured]
    if not kept:
        return result
    numbers = ", ".join(str(n) for n in sorted(measured))
    figures = sorted([*kept, *result["figures"]], key=lambda f: f["figure"])
    return {**result, "figures": figures,
            "date": f"{result['date']} (figure {numbers}; the others {previous['date']})"}


def _measure(ctx: Context, figures: list[int], records: list[Record]) -> bool:
    """Measure each figure in turn; True when one failed to run."""
    failed = False
    for number in figures:
        module = importlib.import_module(FIGURES[number])
        t0 = time.perf_counter()
        try:
            if number in NEEDS_SPEECH:
                from bench.speech import require_espeak

                require_espeak()
            record = module.run(ctx)
        except SpeechUnavailable as err:
            record = module.new_record(ctx)
            record.skipped = f"skipped: {err}"
            ctx.log(f"figure {number} SKIPPED: {err}")
        except Exception as err:  # noqa: BLE001 - report and carry on with the next figure
            failed = True
            record = module.new_record(ctx)
            record.skipped = f"error: {type(err).__name__}: {err}"[:2000]
            ctx.log(f"figure {number} FAILED:\n{traceback.format_exc()}")
        record.seconds = round(time.perf_counter() - t0, 1)
        ctx.log(f"figure {number}: {record.shown()} (goal {record.goal}) in {record.seconds:.0f} s")
        records.append(record)

    return failed


if __name__ == "__main__":
    sys.exit(main())
