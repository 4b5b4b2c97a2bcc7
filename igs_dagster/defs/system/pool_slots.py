"""Free pool slots that a waiting step never gets: a transcription stuck beside an idle `gpu`.

Dagster (1.13, SQL event-log storage) hands a freed slot to the oldest waiting step at the moment
the slot is freed. A step that starts waiting in that same moment can miss the hand-off:
1. it looks for an unassigned slot and finds none (the other step still holds it),
2. the other step frees the slot and finds nobody waiting, so no step is assigned,
3. it registers as waiting, unassigned, beside a free slot.
It then waits until some other step frees a slot, which never happens when it was the last
transcription. Durability drill 2 caught one: a video's transcript waited 14 minutes, until the
next drill's run came along. On every watchdog pass (`WATCHDOG_INTERVAL_S`, from the
`igs_watchdog` sensor), each pool's free slots go to its waiting steps, oldest first, as
Dagster's free path would have done. The slot rows themselves are the semaphore
(`claim_concurrency_slot`), so a step assigned twice over still never runs beside another.
"""

from __future__ import annotations

import dagster as dg


def stranded(instance: dg.DagsterInstance) -> dict[str, int]:
    """Per pool: how many waiting steps could have a slot that nobody holds or was given."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    keys = sorted(storage.get_concurrency_keys())
    found = {}
    for key, info in storage.get_concurrency_infos(keys).items():
        free = info.slot_count - info.assigned_step_count
        if free > 0 and info.pending_step_count > 0:
            found[key] = min(free, info.pending_step_count)
    return found


def assign_stranded(instance: dg.DagsterInstance, log) -> str:
    """Give each pool's free slots to its waiting steps; one line for the sensor's note."""
    found = stranded(instance)
    for key, count in found.items():
        for _ in range(count):
            instance.event_log_storage.assign_pending_steps([key])
        log.warning(f"pool {key}: {count} waiting step(s) had missed a free slot; assigned now")
    if not found:
        return "pool slots: none stranded"
    return "pool slots: " + ", ".join(f"{key} {count} assigned" for key, count in found.items())
