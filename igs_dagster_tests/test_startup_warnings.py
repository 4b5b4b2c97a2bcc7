"""Start-up says nothing misleading: loading the code location warns about nothing, and
`igs dev` runs Dagster from DAGSTER_HOME (where its dagster.yaml is), so Dagster has no reason to
say a dagster.yaml "will not be used"."""

from __future__ import annotations

import importlib
import json
import warnings

import igs_dagster.definitions
from igs_dagster.cli import app


def test_loading_the_definitions_warns_about_nothing():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.reload(igs_dagster.definitions)
        defs = igs_dagster.definitions.defs
        defs.resolve_job_def("video_ingest")
        assert len(defs.get_repository_def().sensor_defs) >= 4
    dagster_warnings = [str(w.message) for w in caught if "dagster" in w.filename]
    assert not dagster_warnings, dagster_warnings


def test_igs_dev_runs_dagster_from_dagster_home(monkeypatch, tmp_path):
    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dagster.yaml").write_text("telemetry: {enabled: false}\n")  # a stray one here
    seen = {}

    def fake_execv(program, argv):  # record instead of replacing the test process
        import os

        seen.update(program=program, argv=argv, cwd=os.getcwd(), home=os.environ["DAGSTER_HOME"])
        raise SystemExit(0)

    monkeypatch.setattr("os.execv", fake_execv)
    assert app.main(["dev", "--port", "3999"]) == 0
    assert seen["cwd"] == seen["home"] == str(tmp_path / "data" / "dagster_home")
    assert seen["argv"][1:] == ["-m", "igs_dagster.cli.stack", "--host", "127.0.0.1", "--port", "3999",
                                "--data-dir", str(tmp_path / "data")]
    assert app.main(["dev", "--port", "3999", "--reload"]) == 0
    assert seen["argv"][1:4] == ["-m", "dagster", "dev"]
    assert json.dumps(seen["argv"]).count("igs_dagster.definitions") == 1
