"""Stopping a loop: the cancel flag honoured (`stop_if_cancelled`, the one check every role
and every long wait makes), `igs loop cancel` (`cancel`), and a loop failed by the Dagster
layer when a role raised a permanent error (`fail`). Both stop a running agent by its pid
file and record the end in the loop record; neither redoes it for a loop that has ended."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from igs_dagster.core.process_groups import kill_from_pid_file
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.state import (
    TERMINAL,
    LoopCancelled,
    LoopState,
    cancel_path,
    is_cancelled,
    load_loop,
    pid_path,
    request_cancel,
    update_loop,
    utc_now,
)


def mark_cancelled(env: LoopEnv, state: LoopState) -> LoopState:
    """Mark the newest record cancelled (not `state`, which a role may have held for minutes)."""

    def mark(current: LoopState) -> bool:
        if current.status in TERMINAL:
            return False
        path = cancel_path(env.loops_dir, current.loop_id)
        flag = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        # the flag is "<when> <reason>" (state.request_cancel); the reason alone is shown
        reason = flag.split(" ", 1)[1] if " " in flag else flag or "cancelled"
        current.status = "cancelled"
        current.stop_reason = reason  # "cancelled by user", "Dagster run ... was canceled"
        current.next_step = None
        current.finished_at = utc_now()
        return True

    return update_loop(env.loops_dir, state.loop_id, mark)


def stop(env: LoopEnv, state: LoopState, why: str) -> NoReturn:
    """Mark the loop cancelled and raise LoopCancelled("loop <id> <why>")."""
    mark_cancelled(env, state)
    raise LoopCancelled(f"loop {state.loop_id} {why}")


def stop_if_cancelled(env: LoopEnv, state: LoopState, why: str,
                      undo: Callable[[], object] | None = None) -> None:
    """When the loop's cancel flag is set: `undo` what the caller began, then `stop`."""
    if is_cancelled(env.loops_dir, state.loop_id):
        if undo is not None:
            undo()
        stop(env, state, why)


def cancel(env: LoopEnv, loop_id: str, reason: str = "cancelled by user") -> dict[str, Any]:
    """Set the cancel flag, stop a running agent (via its pid file), mark the loop cancelled.

    Returns `{"loop_id", "status", "killed": bool}`.
    """
    request_cancel(env.loops_dir, loop_id, reason)
    killed = kill_from_pid_file(pid_path(env.loops_dir, loop_id), env.grace_s)
    state = mark_cancelled(env, load_loop(env.loops_dir, loop_id))
    return {"loop_id": loop_id, "status": state.status, "killed": killed}


def fail(env: LoopEnv, loop_id: str, error: str) -> dict[str, Any]:
    """Mark the loop failed (for the Dagster layer when a role raised PermanentError); stop a
    leftover agent. Returns `{"loop_id", "status", "error"}`."""
    kill_from_pid_file(pid_path(env.loops_dir, loop_id), env.grace_s)

    def mark(state: LoopState) -> bool:
        if state.status in TERMINAL:
            return False
        state.status = "failed"
        state.error = error
        state.next_step = None
        state.finished_at = utc_now()
        return True

    state = update_loop(env.loops_dir, loop_id, mark)
    return {"loop_id": loop_id, "status": state.status, "error": state.error}
