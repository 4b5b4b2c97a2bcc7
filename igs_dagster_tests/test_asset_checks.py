"""The blocking vault_note check in a real Dagster instance: a broken note fails the check,
the failure is listed for `igs status`, and the steps after the note do not run."""

from __future__ import annotations

import dagster as dg

from igs_dagster.definitions import defs
from igs_dagster.defs.video.checks import failed_checks, vault_note_check
from igs_dagster.defs.video.claims import claims
from igs_dagster.defs.video.partitions import video_partitions


def test_blocking_note_check_stops_downstream(tmp_path, igs_env):
    vault = igs_env.vault_dir
    note = vault / "Resources" / "videos" / "broken.md"
    note.parent.mkdir(parents=True)
    note.write_text("---\ntitle: x\n---\n\nno marker here\n")
    ran = []

    @dg.asset(partitions_def=video_partitions, group_name="video")
    def vault_note(context) -> None:
        claims(context, igs_env.media_dir).save(
            "vault_note", {"note_path": str(note), "slug": "broken", "daily": "2026-01-01"})

    @dg.asset(partitions_def=video_partitions, group_name="video", deps=[vault_note])
    def enriched_summary() -> None:
        ran.append("enriched_summary")

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", ["k1"])
        result = dg.materialize(
            [vault_note, enriched_summary, vault_note_check], instance=instance,
            partition_key="k1", resources=defs.resources, raise_on_error=False,
        )
        evaluation = result.get_asset_check_evaluations()[0]
        assert not evaluation.passed
        assert "transcript marker found 0 times" in evaluation.description
        assert "frontmatter lacks" in evaluation.description
        assert ran == []  # blocked
        failed = failed_checks(instance)
        assert [(c["check"], c["partition"], c["blocking"]) for c in failed] == [
            ("vault_note_check", "k1", True)]
