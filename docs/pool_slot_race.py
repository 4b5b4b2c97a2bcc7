"""A race in Dagster's pool-slot hand-off, on a bare Dagster instance (no igs code).

Dagster's SQL event-log storage hands a freed pool slot to the oldest waiting step at the moment
the slot is freed (`free_concurrency_slot_for_step` assigns pending steps). A step that starts
waiting at that same moment goes through `claim_concurrency_slot`: it checks for an unassigned
slot (`has_unassigned_slots`), then registers itself as pending (`add_pending_step`) assigned or
not by what it saw. Between the check and the registration the other step can free the slot and
find nobody waiting: the new step is then registered unassigned beside a free slot, and every
later claim of it is refused until some other step frees a slot, which never happens when it was
the last one (a transcription waited 14 minutes in igs-dagster's durability drill 2).

This script plays the two steps in two processes, the way two run workers do, many times over:
process A holds the pool's only slot and frees it, process B claims the slot at the same
moment; after each trial it asks the storage whether B is stuck: waiting, unassigned, with the
slot free and no other step around. Each trial starts the two processes' calls together
(a barrier) with a small random offset, so the calls interleave differently each time.

    python docs/pool_slot_race.py [TRIALS]     # default 300; exit 1 when the race showed

What it printed here is in docs/pool-slot-race.md. igs-dagster works around it
(dagster_compat.assign_stranded_pool_slots, run by the `igs_watchdog` sensor every 30 s).
"""

from __future__ import annotations

import multiprocessing as mp
import random
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

POOL = "gpu"
STEP = "transcript"


def _instance(home: str) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(home)


def _holder(home: str, start, done, trials: int) -> None:
    """Run A: frees the slot it holds when the trial starts."""
    storage = _instance(home).event_log_storage
    for trial in range(trials):
        start.wait()
        time.sleep(random.uniform(0, 0.004))
        storage.free_concurrency_slot_for_step(f"a{trial}", STEP)
        done.wait()


def _claimer(home: str, start, done, trials: int, claimed) -> None:
    """Run B: starts waiting for the slot when the trial starts (one claim, as a step does)."""
    storage = _instance(home).event_log_storage
    for trial in range(trials):
        start.wait()
        time.sleep(random.uniform(0, 0.004))
        claimed[trial] = storage.claim_concurrency_slot(POOL, f"b{trial}", STEP).is_claimed
        done.wait()


def main(trials: int) -> int:
    home = tempfile.mkdtemp(prefix="pool-race-")
    Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = _instance(home)
    storage = instance.event_log_storage
    storage.set_concurrency_slots(POOL, 1)
    ctx = mp.get_context("fork")
    start, done = ctx.Barrier(3), ctx.Barrier(3)
    claimed = ctx.Array("b", trials)
    procs = [ctx.Process(target=_holder, args=(home, start, done, trials)),
             ctx.Process(target=_claimer, args=(home, start, done, trials, claimed))]
    for proc in procs:
        proc.start()
    stuck = []
    for trial in range(trials):
        assert storage.claim_concurrency_slot(POOL, f"a{trial}", STEP).is_claimed  # A holds it
        start.wait()
        done.wait()
        info = storage.get_concurrency_info(POOL)
        if not claimed[trial]:
            # B waits. Stuck: the slot is free, B is not assigned, and B's own retries fail.
            retries = [storage.claim_concurrency_slot(POOL, f"b{trial}", STEP).is_claimed
                       for _ in range(3)]
            if (info.active_slot_count == 0 and info.assigned_step_count == 0
                    and info.pending_step_count == 1 and not any(retries)):
                stuck.append(trial)
        storage.free_concurrency_slot_for_step(f"b{trial}", STEP)  # clean up for the next trial
    for proc in procs:
        proc.join()
    rate = 100 * len(stuck) / trials
    print(f"{trials} trials: B claimed the freed slot at once in {sum(claimed)}, waited and was "
          f"handed it in {trials - sum(claimed) - len(stuck)}, was left waiting beside the free "
          f"slot in {len(stuck)} ({rate:.1f} %)")
    if stuck:
        print(f"stuck in trials {stuck[:10]}{' ...' if len(stuck) > 10 else ''}: pool {POOL!r} "
              "had 1 slot, 0 slots in use, 0 steps assigned, 1 step waiting, and that step's "
              "claims kept failing")
    import dagster

    print(f"dagster {dagster.__version__}, storage {type(storage).__name__}")
    return 1 if stuck else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
