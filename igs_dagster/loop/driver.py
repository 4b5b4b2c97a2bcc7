"""The loop without Dagster: run the role the loop record names next, again and again, until
the loop is done (the tests and the benchmark drive loops this way; the Dagster ops run one
role per step instead)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.roles import ROLES
from igs_dagster.loop.state import load_loop


def steps(env: LoopEnv, loop_id: str, max_steps: int = 10_000) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run the role the loop record names next until the loop is done; yields (role, its
    reply)."""
    for _ in range(max_steps):
        role = load_loop(env.loops_dir, loop_id).next_step or ""
        if role not in ROLES:
            return
        yield role, ROLES[role](env, loop_id)


def run_to_end(env: LoopEnv, loop_id: str, max_steps: int = 10_000) -> list[dict[str, Any]]:
    """`steps` to the end: every reply in order, with its role under "role"."""
    return [{"role": role, **reply} for role, reply in steps(env, loop_id, max_steps)]
