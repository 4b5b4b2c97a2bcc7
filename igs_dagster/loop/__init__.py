"""Autonomous coding loop: PRD in, committed code out (plain Python; no dagster imports).

Roles, in order: plan -> implement -> review -> judge (PASS: next story; FAIL: implement again)
-> complete -> retro. `loop/roles.py` holds start and the roles of a story, `loop/finish.py`
the last two; each passes one guard first (`loop/turn.py`) and returns a `"next"` key the
Dagster layer chains runs by (`loop/driver.py` chains them without Dagster). Stopping a loop:
`loop/control.py`; a skipped story's side branch and final recheck: `loop/recheck.py`; events
in: `loop/intake.py`.
"""
