"""Figures 8 and 9: followed feeds and playlists.

8: the feed sensor's poll cycle with 200 followed feeds on a loopback server (a separate
process, so its CPU is not counted) that answers 304 to each conditional GET: wall time and
CPU time (all threads of this process) of one `feed_sensor` evaluation, every feed due.
9: a 500-entry playlist (an RSS feed on a plain web server) from `igs send URL` to the inbox
sensor's tick result: 500 new partitions and 500 run requests in one tick.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from bench import deploy
from bench.common import Record
from bench.context import Context

_SERVE = ("import sys, time; from pathlib import Path; from igs_dagster.core.local_http import FolderServer;"
          "s = FolderServer(Path(sys.argv[1])); print(s.base_url, flush=True); time.sleep(86400)")


def _feed(show: str, base: str, count: int) -> str:
    from igs_dagster_tests.feedserver import Episode, rss

    return rss(show, [Episode(f"{show}-{i}", f"{show} episode {i}", f"{base}/{show}-{i}.mp3",
                              f"Mon, {1 + i % 28:02d} Nov 2026 10:00:00 GMT") for i in range(count)])


@contextmanager
def serving(root: Path) -> Iterator[tuple[Path, str]]:
    """`root`/served on a loopback web server in a process of its own (its CPU is not counted
    here): yields the folder and its base URL."""
    served = root / "served"
    served.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(served)], stdout=subprocess.PIPE, text=True)
    try:
        yield served, proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()


def _feeds(ctx: Context) -> int:
    return 20 if ctx.quick else 200


def new_record(ctx: Context) -> Record:
    return Record(8, f"Feed sensor: one poll cycle of {_feeds(ctx)} followed feeds answering 304 "
                  "(wall; CPU in notes)", "≤ 5 s and ≤ 1 CPU-s", 5.0, "s")


def run(ctx: Context) -> Record:
    from igs_dagster.core.inbox import EventQueue
    from igs_dagster.core.settings import load_settings
    from igs_dagster.defs.resources import IgsSettings
    from igs_dagster.defs.video.feeds import feed_sensor
    from igs_dagster.video.subscriptions import Subscriptions, follow

    rec, count, root = new_record(ctx), _feeds(ctx), ctx.folder("fig8")
    with serving(root) as (served, base):
        for i in range(count):
            (served / f"feed{i}.rss").write_text(_feed(f"show{i}", base, 5))
        with deploy.deployment(root / "dep", daemon=False) as dep, dep.activated():
            settings = load_settings()
            store, queue = Subscriptions(settings.feeds_db), EventQueue(settings.queue_db)
            for i in range(count):
                follow(store, queue, settings.data_dir, f"{base}/feed{i}.rss", newest=0, interval_s=60)
            instance = dep.instance()
            walls, cpus = [], []
            for _ in range(3):
                with store._connect() as conn:  # every feed due now
                    conn.execute("UPDATE feeds SET next_poll = 0")
                context = dg.build_sensor_context(instance=instance, resources={"igs": IgsSettings()})
                wall, cpu = time.perf_counter(), time.process_time()
                result = feed_sensor(context)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                assert f"{count} not-modified" in str(result.skip_message), result.skip_message
    rec.set_runs(walls)
    cpu = sorted(cpus)[len(cpus) // 2]
    rec.details.update(cpu_s=[round(c, 3) for c in cpus], feeds=count)
    rec.note(f"CPU per cycle {cpu:.2f} s (median of {len(cpus)}; goal ≤ 1 CPU-s)")
    if cpu > 1.0:
        rec.met = False
    ctx.log(f"figure 8: {count} feeds, cycle {rec.measured:.2f} s wall, {cpu:.2f} s CPU")
    return rec
