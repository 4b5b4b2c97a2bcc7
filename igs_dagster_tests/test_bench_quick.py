"""`python -m bench --quick` runs every figure on tiny inputs and records each one.

Nothing about time is asserted (timings on shared CI machines mean nothing); only that each
figure produced its record: a measured value, or a stated reason it was skipped (espeak-ng
missing), never an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_quick_mode_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n<!-- bench:results -->\nstale table\n<!-- /bench:results -->\n\nend\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGS_", "DAGSTER_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--quiet", "--json", str(out),
         "--readme", str(readme), "--cache", str(tmp_path / "cache"), "--work", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "quick"
    assert {"cpu", "cores", "memory_gb", "python", "dagster"} <= set(result["machine"])
    figures = {f["figure"]: f for f in result["figures"]}
    from bench.cli import FIGURES

    assert sorted(figures) == sorted(FIGURES)
    for number, figure in figures.items():
        assert figure["goal"] and figure["name"], number
        if figure["skipped"]:
            assert figure["skipped"].startswith("skipped: espeak-ng is not installed"), figure["skipped"]
        else:
            assert figure["measured"] is not None and figure["runs"], number
            assert figure["met"] in (True, False), number
    # the table went to stdout and replaced the old one in the README, keeping the rest
    assert "| 7 |" in proc.stdout
    text = readme.read_text()
    assert "stale table" not in text and "| 1 |" in text and text.endswith("end\n")
