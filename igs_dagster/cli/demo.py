"""`igs demo`: ingest the bundled sample clip end to end through the Dagster assets.

The clip is served from a loopback HTTP server so the real yt-dlp download path runs, then the
whole ingest job executes against the persistent instance (visible later in `igs dev`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from igs_dagster.core.errors import IgsError
from igs_dagster.core.local_http import FolderServer
from igs_dagster.core.settings import Settings

SAMPLE = Path(__file__).parents[1] / "sample" / "jfk-inaugural.mp4"
SAMPLE_KEY = "sample-jfk-inaugural"  # one partition however often the demo runs
SAMPLE_TITLE = "JFK inaugural address (excerpt, 1961)"


@contextmanager
def serve_sample(settings: Settings) -> Iterator[str]:
    """The sample on a loopback server, and for as long as it runs the address fence lets this
    process reach that address (127.0.0.1) and no other private one (core/netguard)."""
    name = "IGS_NETWORK__ALLOW"
    before = os.environ.get(name)
    with FolderServer(SAMPLE.parent) as server:
        os.environ[name] = json.dumps([*settings.network.allow, "127.0.0.1"])
        try:
            yield server.url(SAMPLE.name)
        finally:
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


def run_demo(settings: Settings) -> Path:
    """Queue the sample, add its partition and run the ingest job; return the note's path."""
    from igs_dagster.core.inbox import EventQueue, Source
    from igs_dagster.definitions import defs
    from igs_dagster.defs.instance import open_instance
    from igs_dagster.defs.video.claims import handed
    from igs_dagster.defs.video.partitions import video_partitions

    instance = open_instance(settings)
    with serve_sample(settings) as url:
        # register the source without queueing an event: this run is launched right here
        source = Source(SAMPLE_KEY, "url", url, "sample", SAMPLE_TITLE)
        EventQueue(settings.queue_db).register_source(source, replace=True)
        key = source.key
        if not instance.has_dynamic_partition(video_partitions.name, key):
            instance.add_dynamic_partitions(video_partitions.name, [key])
        job = defs.resolve_job_def("video_ingest")
        result = job.execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        reason = failure.step_failure_data.error.message.strip() if failure else "see the run in the UI"
        raise IgsError(f"demo run {result.run_id} failed: {reason.splitlines()[0]}")
    return Path(handed(settings.media_dir, key, "vault_note")["note_path"])
