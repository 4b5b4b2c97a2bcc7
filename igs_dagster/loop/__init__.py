"""Autonomous coding loop: PRD in, committed code out (plain Python; no dagster imports).

Roles, in order: plan -> implement -> review -> judge (PASS: next story; FAIL: implement again)
-> complete -> retro. `igs_dagster.loop.roles` holds one function per role; the Dagster layer
chains them using the `"next"` key each one returns.
"""
