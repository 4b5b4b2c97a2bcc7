"""Figure 4: claim check. Bytes a video adds to the Dagster instance (its run's events and log
lines, captured logs, asset values in its storage, the run record) for a long transcript, beyond
a trivial run's own cost (the 11 s sample through the same job), and 1 minute vs the long one:
the transcript itself stays in the data folder."""

from __future__ import annotations

from dataclasses import asdict

from bench.common import Record, dur
from bench.context import Context
from bench.long_runs import long_runs


def new_record(ctx: Context) -> Record:
    minutes = ctx.long_minutes
    return Record(4, f"Claim check: bytes added to the instance by a {minutes:g}-min transcript "
                 "beyond a trivial run", "≤ 64 KB", 64.0, "KB")


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    runs = long_runs(ctx)
    trivial, short, long = runs["trivial"], runs["short"], runs["long"]
    beyond = (long.logical_bytes - trivial.logical_bytes) / 1024
    rec.set_runs([beyond])
    rec.details = {label: {**asdict(cost), "logical_bytes": cost.logical_bytes}
                   for label, cost in runs.items()}
    growth = (long.logical_bytes - short.logical_bytes) / 1024
    rec.note(
        f"per video: trivial ({dur(trivial.seconds)}) {trivial.logical_bytes / 1024:.0f} KB "
        f"({trivial.events} events), {dur(short.seconds)} {short.logical_bytes / 1024:.0f} KB, "
        f"{dur(long.seconds)} {long.logical_bytes / 1024:.0f} KB ({long.events} events): "
        f"{dur(long.seconds)} − {dur(short.seconds)} = {growth:+.1f} KB "
        f"while its transcript JSON is {long.transcript_bytes / 1024:.0f} KB (in the data folder); "
        f"on disk (SQLite pages) {long.disk_bytes / 1024:.0f} KB"
    )
    return rec
