"""Loop records under concurrent writers (issue 24, item 4): a cancel written while a role holds
the record is never overwritten by the role's next save.

The roles load the record, work for a while (agents, git, checks) and save it again; `igs loop
cancel` runs in another process meanwhile. Each save compares the record's version under the
record's lock (loop/state.py): a role whose record changed under it stops with LoopCancelled
instead of writing `running` over `cancelled`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from igs_dagster.loop import roles
from igs_dagster.loop.env import LoopEnv
from igs_dagster.loop.state import LoopCancelled, LoopRecordChanged, load_loop, save_loop

from .conftest import S_ADD, git, loop_env, write_prd

CANCEL = """
import sys
from pathlib import Path
from igs_dagster.loop.control import cancel
from igs_dagster.loop.env import LoopEnv
cancel(LoopEnv(Path(sys.argv[1]), Path(sys.argv[2]), grace_s=0.5), sys.argv[3], "by the test")
"""


def _cancel_in_another_process(env: LoopEnv, loop_id: str) -> None:
    subprocess.run([sys.executable, "-c", CANCEL, str(env.loops_dir), str(env.vault_dir), loop_id],  # noqa: S603
                   check=True, timeout=120)


def _started(tmp_path: Path, project: Path, env: LoopEnv) -> str:
    prd = write_prd(tmp_path / "prd.json", [S_ADD])
    return roles.start(env, {"project": str(project), "prd": str(prd)})["loop_id"]


def test_a_role_saving_after_a_cancel_does_not_undo_it(tmp_path: Path, project: Path) -> None:
    env = loop_env(tmp_path)
    lid = _started(tmp_path, project, env)
    held = load_loop(env.loops_dir, lid)  # what a role holds while its agent works
    _cancel_in_another_process(env, lid)
    held.iterations_used += 1  # the role's progress
    with pytest.raises(LoopCancelled, match="cancelled"):
        save_loop(env.loops_dir, held)
    state = load_loop(env.loops_dir, lid)
    assert state.status == "cancelled" and state.iterations_used == 0


def test_a_stale_save_of_a_running_loop_is_refused_not_merged(tmp_path: Path, project: Path) -> None:
    env = loop_env(tmp_path)
    lid = _started(tmp_path, project, env)
    first, second = load_loop(env.loops_dir, lid), load_loop(env.loops_dir, lid)
    first.stop_reason = "first"
    save_loop(env.loops_dir, first)
    second.stop_reason = "second"
    with pytest.raises(LoopRecordChanged):  # transient: the retried role reads it again
        save_loop(env.loops_dir, second)
    assert load_loop(env.loops_dir, lid).stop_reason == "first"
    first.stop_reason = "first, again"  # the holder of the newest version saves on
    save_loop(env.loops_dir, first)
    assert load_loop(env.loops_dir, lid).stop_reason == "first, again"


HOLD_HOOK = """#!/bin/sh
# post-commit (runs even with --no-verify): hold the committing role while a file says so
if [ -f "{hold}" ]; then
  touch "{entered}"
  while [ -f "{hold}" ]; do sleep 0.05; done
fi
"""


def test_cancel_while_the_implementor_commits(tmp_path: Path, project: Path) -> None:
    """The real race: `implement` has run its agent and is committing (held in a post-commit
    hook) when `igs loop cancel` runs in another process; once released, the role must not
    write `running` over the cancelled record."""
    env = loop_env(tmp_path)
    lid = _started(tmp_path, project, env)
    roles.plan(env, lid)
    hold, entered = tmp_path / "hold", tmp_path / "entered"
    hooks = Path(git(project, "rev-parse", "--git-common-dir"))
    hooks = (project / hooks if not hooks.is_absolute() else hooks) / "hooks"
    (hooks / "post-commit").write_text(HOLD_HOOK.format(hold=hold, entered=entered))
    (hooks / "post-commit").chmod(0o755)
    hold.touch()
    outcome: dict = {}

    def implement() -> None:
        try:
            outcome["result"] = roles.implement(env, lid)
        except BaseException as err:  # noqa: BLE001 - reported below
            outcome["error"] = err

    worker = threading.Thread(target=implement)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not entered.exists() and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert entered.exists(), outcome
        _cancel_in_another_process(env, lid)
    finally:
        hold.unlink(missing_ok=True)
        worker.join(120)
    assert isinstance(outcome.get("error"), LoopCancelled), outcome
    state = load_loop(env.loops_dir, lid)
    assert state.status == "cancelled" and state.next_step is None
