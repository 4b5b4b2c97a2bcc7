"""The autonomous coding loop on Dagster: role ops, three jobs, the sensors that chain them.

Plain logic lives in `igs_dagster.loop` (roles, record, planner, ...); this package only
wires it: see jobs.py for the run shapes and sensors.py for how runs follow each other.
"""
