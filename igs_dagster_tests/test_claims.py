"""What each video asset hands on (defs/video/claims.py): a JSON file per asset beside the
media, read by the assets after it; values a deployment's old IO manager kept are still read;
a missing one is one line naming what to materialize."""

from __future__ import annotations

import json
import pickle

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.defs.video.claims import FOLDER, Claims, handed


def test_a_value_is_a_json_file_beside_the_media(tmp_path):
    claims = Claims(tmp_path / "media" / "k1" / FOLDER, "k1")
    claims.save("vault_note", {"note_path": "/v/n.md", "slug": "n", "daily": "2026-01-01"})
    path = tmp_path / "media" / "k1" / "assets" / "vault_note.json"
    assert json.loads(path.read_text()) == {"note_path": "/v/n.md", "slug": "n", "daily": "2026-01-01"}
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert handed(tmp_path / "media", "k1", "vault_note")["slug"] == "n"
    assert claims.load_each("vault_note") == [claims.load("vault_note")]


def test_an_older_deployments_stored_value_is_read_and_a_missing_one_is_named(tmp_path):
    storage = tmp_path / "dagster_home" / "storage"
    (storage / "transcript").mkdir(parents=True)
    (storage / "transcript" / "k1").write_bytes(pickle.dumps({"path": "/m/k1/transcript.json"}))
    claims = Claims(tmp_path / "media" / "k1" / FOLDER, "k1", storage)
    assert claims.load("transcript") == {"path": "/m/k1/transcript.json"}
    with pytest.raises(PermanentError, match=r"^vault_note has not been materialized for k1 yet: "
                                             r"materialize it \(or the whole video\) first$"):
        claims.load("vault_note")
