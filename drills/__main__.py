"""`python -m drills [NAME ...] [--only N ...] [--json PATH] [--backlog N] [--workdir DIR] [--keep]`

Runs the drills (all by default, in order), prints a Markdown results table and writes every
result (checks, timings, details) as JSON. Exit status 0 when every drill that ran passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from drills import DrillContext, registry, run_drill
from drills.common import DrillResult

DEFAULT_JSON = Path("var") / "drills-results.json"


def table(results: list[DrillResult]) -> str:
    lines = [
        "| drill | sent | materialized | duplicates | lost | result | wall time |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        outcome = r.outcome if r.skipped is None else f"skipped ({r.skipped})"
        lines.append(
            f"| {r.number}. {r.name} | {r.sent} | {r.materialized} | {r.duplicates} | {r.lost} "
            f"| {outcome} | {r.wall_s:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    drills = registry()
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__.splitlines()[0])
    names = {name: number for number, (name, _) in drills.items()}
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"run these drills by name ({', '.join(names)}); default: all")
    parser.add_argument("--only", type=int, action="append", choices=sorted(drills),
                        help="run this drill by number (repeatable); default: all")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file ({DEFAULT_JSON})")
    parser.add_argument("--backlog", type=int, default=50, help="URLs in drill 1 (50)")
    parser.add_argument("--workdir", type=Path, help="work folder (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown drill {unknown[0]!r} (choose from {', '.join(names)})")

    ctx = DrillContext.standalone(args.workdir, backlog_size=args.backlog)
    print(f"work folder: {ctx.workdir}", flush=True)
    results: list[DrillResult] = []
    started = time.monotonic()
    try:
        chosen = [names[n] for n in args.names or []] + (args.only or [])
        for number in chosen or sorted(drills):
            print(f"drill {number} ({drills[number][0]})…", flush=True)
            result = run_drill(number, ctx)
            results.append(result)
            print(f"  {result.outcome} in {result.wall_s:.0f} s: sent {result.sent}, "
                  f"materialized {result.materialized}, duplicates {result.duplicates}, "
                  f"lost {result.lost}", flush=True)
            for failure in result.failures():
                print(f"  ✗ {failure.splitlines()[0][:300]}", flush=True)
    finally:
        ctx.close()
        if not args.keep and args.workdir is None:
            shutil.rmtree(ctx.workdir, ignore_errors=True)

    print()
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "machine": platform.machine(),
                 "cpus": os.cpu_count()},
        "wall_s": round(time.monotonic() - started, 1),
        "drills": [r.to_json() for r in results],
    }, indent=2, default=str) + "\n")
    print(f"\nresults: {args.json}")
    return 0 if all(r.ok or r.skipped is not None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
