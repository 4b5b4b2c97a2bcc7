"""The durability drills (drills/, also `python -m drills`) as tests: each passes only when
nothing was lost, nothing was materialized twice and all of its own checks held.

Drills 1, 2, 3 and 6 share one deployment and daemon (in that order: drill 1 needs the daemon
stopped first); 4 (NAS over SFTP) and 5 (tmpfs data folder) bring their own.

Drill 7 (docker) builds and starts the compose deployment in a private Docker engine. Without
one it is skipped, except as root under CI=true, where it fails: CI must run it.

Drill 1's backlog is 20 URLs here (`IGS_DRILLS_BACKLOG`, e.g. 50 = the issue's figure and the
`python -m drills` default): each run costs ~15 CPU-seconds, so on a 2-core CI machine the full
50 alone take ~6.5 minutes, and the whole file would no longer fit the suite's time budget.
"""

from __future__ import annotations

import json
import os

import pytest

from drills import DrillContext, registry, run_drill
from drills.__main__ import table

pytestmark = pytest.mark.slow
# backlog: 20+ runs; docker: debootstrap on a first run, a cold image build, the stack twice
TIMEOUTS = {"backlog": 1800, "docker": 2700}
RESULTS: list = []


@pytest.fixture(scope="module")
def drills(tmp_path_factory: pytest.TempPathFactory, media_server, long_mp4):
    ctx = DrillContext(
        tmp_path_factory.mktemp("drills"), media_server, long_mp4,
        backlog_size=int(os.environ.get("IGS_DRILLS_BACKLOG", "20")),
    )
    yield ctx
    ctx.close()
    if RESULTS:
        print("\n" + table(RESULTS))


@pytest.mark.parametrize(
    "number",
    [pytest.param(n, id=name, marks=[pytest.mark.timeout(TIMEOUTS.get(name, 900))])
     for n, (name, _) in sorted(registry().items())],
)
def test_drill(drills: DrillContext, number: int):
    result = run_drill(number, drills)
    RESULTS.append(result)
    print(f"\n{result.name} details: {json.dumps(result.details, default=str)[:3000]}")  # figures (-s)
    if result.skipped is not None:
        pytest.skip(result.skipped)
    assert result.ok, "\n".join(result.failures()) + (
        "\n" + result.details.get("traceback", "") if result.error else ""
    )
    assert result.lost == 0 and result.duplicates == 0
