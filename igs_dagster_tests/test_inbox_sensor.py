"""The inbox part of the `igs_events` sensor, evaluated directly (`dg.build_sensor_context`) against a real
instance and a real event queue: pool limits (a tick never sets one), unknown partitions, duplicates in one batch and
the cursor after a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.events import (
    ContentSummarize,
    ContentSummarizeData,
    VideoDownload,
    VideoDownloadData,
)
from igs_dagster.core.inbox import EventQueue
from igs_dagster.defs.events import igs_events
from igs_dagster.defs.instance import GPU_POOL
from igs_dagster.intake import accept

URL_A = "https://youtu.be/dQw4w9WgXcQ"
URL_B = "https://www.youtube.com/watch?v=9bZkp7q19f0"


@pytest.fixture(scope="module")
def blank_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance home whose storage exists (creating SQLite storage costs ~2 s)."""
    home = tmp_path_factory.mktemp("blank-instance")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.get_runs(limit=1)
    return home


@pytest.fixture
def world(igs_env, blank_home: Path, tmp_path: Path):
    """A fresh instance (a copy of the blank one) and the deployment's real event queue."""
    home = shutil.copytree(blank_home, tmp_path / "instance")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        assert gpu_limit(instance) is None and not instance.get_dynamic_partitions("videos")
        yield instance, igs_env, EventQueue(igs_env.queue_db)


def tick(instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return igs_events(context)


def skipped(result) -> bool:
    return isinstance(result, dg.SensorResult) and result.skip_reason is not None


def inbox_cursor(result) -> int:
    return json.loads(result.cursor)["inbox"]


def send(settings, queue: EventQueue, url: str) -> str:
    return accept(VideoDownload(name="video.download", data=VideoDownloadData(url=url)), settings, queue).key


def summarize(queue: EventQueue, key: str) -> int:
    """A queued content.summarize for `key` (as intake would queue it for a note naming it)."""
    event = ContentSummarize(name="content.summarize", data=ContentSummarizeData(note=Path("x.md")))
    return queue.put(event, key=key)


def gpu_limit(instance: dg.DagsterInstance) -> int | None:
    limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    return limits.get(GPU_POOL)


def test_idle_tick_skips_and_touches_nothing(world):
    instance, _, _ = world
    result = tick(instance)
    assert skipped(result) and "no new events" in result.skip_reason.skip_message
    assert gpu_limit(instance) is None  # an idle tick never opens the instance


def test_operator_gpu_limit_survives_ticks(world):
    """`gpu = 2` set in the UI (a bigger GPU) is the operator's: no tick resets it."""
    instance, settings, queue = world
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 2)
    cursor = None
    for url in (URL_A, URL_B):
        send(settings, queue, url)
        result = tick(instance, cursor)
        assert isinstance(result, dg.SensorResult) and result.run_requests
        cursor = result.cursor
        assert gpu_limit(instance) == 2
        assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 2


def test_duplicates_in_one_batch_make_one_run_and_one_partition(world):
    instance, settings, queue = world
    key = send(settings, queue, URL_A)
    assert send(settings, queue, f"https://www.youtube.com/watch?v={key}") == key  # same video
    other = send(settings, queue, URL_B)
    last = queue.last_id()
    result = tick(instance)
    assert [(r.run_key, r.partition_key) for r in result.run_requests] == [
        (f"ingest:{key}", key), (f"ingest:{other}", other)]
    assert [r.tags["igs/event"] for r in result.run_requests] == ["1", "3"]  # first event of each key
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == "videos" and list(add.partition_keys) == [key, other]
    assert inbox_cursor(result) == last


def test_summarize_of_unknown_partition_is_skipped_cursor_moves_on(world):
    instance, settings, queue = world
    summarize(queue, "nosuchvideo")
    result = tick(instance)
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests and not result.dynamic_partitions_requests
    assert inbox_cursor(result) == queue.last_id()  # not re-read forever


def test_summarize_of_known_partition_requests_enrichment_only(world):
    instance, settings, queue = world
    key = send(settings, queue, URL_A)
    instance.add_dynamic_partitions("videos", [key])
    event_id = summarize(queue, key)
    result = tick(instance, json.dumps({"inbox": event_id - 1}))
    (request,) = result.run_requests
    assert request.run_key == f"summarize:{event_id}" and request.partition_key == key
    assert request.asset_selection == [dg.AssetKey("enriched_summary")]
    assert not result.dynamic_partitions_requests


def test_cursor_after_a_crash_rereads_the_batch_without_new_work(world):
    """A daemon killed after the tick's partitions were added but before its cursor was saved
    re-reads the same batch: the same run keys (Dagster starts no second run for a run key)
    and no second partition request; a saved cursor reads only newer events."""
    instance, settings, queue = world
    key_a = send(settings, queue, URL_A)
    first = tick(instance)
    assert [r.run_key for r in first.run_requests] == [f"ingest:{key_a}"]
    instance.add_dynamic_partitions("videos", [key_a])  # the tick's partition request landed
    key_b = send(settings, queue, URL_B)

    again = tick(instance)  # cursor lost with the crash: from the start
    assert [r.run_key for r in again.run_requests] == [f"ingest:{key_a}", f"ingest:{key_b}"]
    (add,) = again.dynamic_partitions_requests
    assert list(add.partition_keys) == [key_b]  # key_a exists already

    resumed = tick(instance, first.cursor)  # cursor saved with the first tick
    assert [r.run_key for r in resumed.run_requests] == [f"ingest:{key_b}"]
    assert inbox_cursor(resumed) == inbox_cursor(again) == queue.last_id()
    assert skipped(tick(instance, resumed.cursor))


def test_a_retry_in_the_same_batch_as_a_plain_send_wins(world):
    """`igs send URL` of a failed video, then `igs retry` before the next tick: one request, the
    retry's run key (the plain one already ran and would be skipped by Dagster)."""
    instance, settings, queue = world
    key = send(settings, queue, URL_A)
    first = tick(instance)
    assert [r.run_key for r in first.run_requests] == [f"ingest:{key}"]
    instance.add_dynamic_partitions("videos", [key])
    send(settings, queue, URL_A)  # known: queued again without a retry number
    assert queue.requeue(key, ("video.download",)) is not None  # what `igs retry` does
    again = tick(instance, first.cursor)
    assert [r.run_key for r in again.run_requests] == [f"ingest:{key}:retry-1"]
    assert not again.dynamic_partitions_requests
