"""The one door for events from `igs send` and `POST /events`: each goes to its pipeline's
intake, which validates it, decides its key and queues it in the durable inbox (nothing is
written unless the whole event is valid).

- `video.download`, `transcript.process`, `content.summarize` -> video/intake.py
- `loop.start` -> loop/intake.py (loaded only then: `igs send` of a video needs no loop code)
- `system.log` -> written to the system log at once (no pipeline, no run)

The router knows each pipeline only by its intake's entry point, never its internals.
"""

from __future__ import annotations

from igs_dagster.core import system_log
from igs_dagster.core.events import Event, LoopStart, SystemLog
from igs_dagster.core.inbox import Accepted, EventQueue
from igs_dagster.core.pathguard import Origin
from igs_dagster.core.settings import Settings
from igs_dagster.core.vault import require_vault
from igs_dagster.video import intake as video_intake


def accept(
    event: Event, settings: Settings, queue: EventQueue | None = None, origin: Origin = "cli"
) -> Accepted:
    """Validate and queue `event`; raise PermanentError (nothing written) if it's unusable.

    `origin`: "api" for `POST /events` (stricter: no loops unless enabled, absolute paths)."""
    queue = queue or EventQueue(settings.queue_db)
    if isinstance(event, SystemLog):
        d = event.data
        system_log.check_entry(d.action, d.tool, d.detail, d.reason)  # a bad one writes nothing
        require_vault(settings.vault_dir, settings.data_dir)  # the log lives in the vault
        system_log.write_entry(settings.system_log, d.action, d.tool, d.detail, reason=d.reason)
        return Accepted(None, event.name, None, "logged")
    if isinstance(event, LoopStart):
        from igs_dagster.loop import intake as loop_intake

        return loop_intake.accept_start(event, settings, queue, origin)
    return video_intake.accept(event, settings, queue, origin)
