"""Three jobs built from the same role ops; the sensors chain their runs.

- `loop_story`:   begin (start a queued loop) -> plan -> implement -> review -> judge
- `loop_attempt`: begin -> implement -> review -> judge   (after a FAIL: no planner)
- `loop_finish`:  begin -> plan -> complete -> retro       (no story left: plan says
  "complete"; should it open a story after all, complete and retro pass it on)

Each run is one turn; the run's last op leaves the loop record saying what comes next and
queues the matching job, or the `igs_events` sensor queues it when the run ends; both under the
turn's own run id, so a turn runs once (`defs/loop/turns.py`). The in-process executor runs all steps of a
run in its run worker (one process per run); runs of one project queue behind each other
through the `igs/project` run-tag limit in dagster.yaml.
"""

import dagster as dg

from igs_dagster.defs.loop.ops import (
    loop_begin,
    loop_complete,
    loop_implement,
    loop_judge,
    loop_plan,
    loop_retro,
    loop_review,
)

LOOP_JOB_TAGS = {"igs/pipeline": "coding-loop"}


@dg.job(
    name="loop_story", executor_def=dg.in_process_executor, tags=LOOP_JOB_TAGS,
    description="One story attempt from the planner on: plan -> implement -> review -> judge.",
)
def loop_story():
    loop_judge(loop_review(loop_implement(loop_plan(loop_begin()))))


@dg.job(
    name="loop_attempt", executor_def=dg.in_process_executor, tags=LOOP_JOB_TAGS,
    description="Another attempt at the current story after a FAIL: implement -> review -> judge.",
)
def loop_attempt():
    loop_judge(loop_review(loop_implement(loop_begin())))


@dg.job(
    name="loop_finish", executor_def=dg.in_process_executor, tags=LOOP_JOB_TAGS,
    description="No story left: complete (recheck skipped stories, summary, push) -> retro.",
)
def loop_finish():
    loop_retro(loop_complete(loop_plan(loop_begin())))


LOOP_JOBS = (loop_story, loop_attempt, loop_finish)
