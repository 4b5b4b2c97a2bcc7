"""Figure 9: `igs send` of a 500-entry playlist (an RSS feed on a plain loopback web server,
nothing downloaded) to the inbox sensor's result: 500 partitions + 500 run requests in one
tick. Timed: the send (read + queue, in-process) and the sensor evaluation."""

from __future__ import annotations

import time

import dagster as dg

from bench import deploy
from bench.common import Record
from bench.context import Context
from bench.fig8_feeds import _feed, serving


def _entries(ctx: Context) -> int:
    return 50 if ctx.quick else 500


def new_record(ctx: Context) -> Record:
    return Record(9, f"Playlist: `igs send` of {_entries(ctx)} entries → partitions + run "
                  "requests in one tick", "≤ 10 s", 10.0, "s")


def run(ctx: Context) -> Record:
    from igs_dagster.cli import main
    from igs_dagster.defs.events import igs_events
    from igs_dagster.defs.resources import IgsSettings

    rec, entries, root = new_record(ctx), _entries(ctx), ctx.folder("fig9")
    with serving(root) as (served, base):
        (served / "big.rss").write_text(_feed("big", base, entries))
        with deploy.deployment(root / "dep", daemon=False) as dep, dep.activated():
            instance = dep.instance()
            started = time.perf_counter()
            assert main(["send", f"{base}/big.rss"]) == 0
            sent = time.perf_counter()
            context = dg.build_sensor_context(instance=instance, resources={"igs": IgsSettings()})
            result = igs_events(context)
            done = time.perf_counter()
    assert len(result.run_requests) == entries, len(result.run_requests)
    assert len(result.dynamic_partitions_requests[0].partition_keys) == entries
    rec.set_runs([done - started])
    rec.details.update(send_s=round(sent - started, 3), tick_s=round(done - sent, 3))
    rec.note(f"igs send (read + queue) {sent - started:.2f} s, sensor tick {done - sent:.2f} s")
    ctx.log(f"figure 9: {entries} entries, send {sent - started:.2f} s + tick {done - sent:.2f} s")
    return rec
