"""Asset checks of the video assets, shown in the UI's Checks tab and in `igs status`.

`vault_note_check` is blocking: a note with broken frontmatter, no transcript marker or a
missing/duplicated daily link stops the steps after it (enrichment, index, extras) in the run.
"""

import warnings
from pathlib import Path

import dagster as dg

from igs_dagster.dagster_compat import check_executions
from igs_dagster.defs.resources import IgsSettings, Vault
from igs_dagster.defs.video.claims import claims, step_claims
from igs_dagster.defs.video.partitions import video_partitions
from igs_dagster.defs.video.resources import ArchiveTarget
from igs_dagster.video import archive, checks
from igs_dagster.video.check_names import BLOCKING, CHECKS
from igs_dagster.video.transcript import load_transcript

# Checks per video partition are what the UI's Checks tab shows per key; Dagster 1.13.27 marks
# `partitions_def` on a check as preview and warns at every import (every `igs` command).
warnings.filterwarnings("ignore", category=dg.PreviewWarning,
                        message="Specifying a partitions_def on an AssetCheckSpec")


def _result(outcome: checks.CheckOutcome, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed, severity=severity, description=outcome.reason,
        metadata=outcome.metadata,
    )


@dg.asset_check(asset="vault_note", blocking=True, partitions_def=video_partitions,
                description="Frontmatter has the expected keys, one transcript marker, one "
                            "link in the daily note. Blocking.")
def vault_note_check(context: dg.AssetCheckExecutionContext, igs: IgsSettings,
                     vault: Vault) -> dg.AssetCheckResult:
    settings, handed = step_claims(context, igs, vault)
    note = handed.load("vault_note")
    return _result(checks.check_note(Path(note["note_path"]), settings.vault_dir, note["slug"]))


@dg.asset_check(asset="enriched_summary", partitions_def=video_partitions,
                description="All six sections present (the offline enricher may leave out key "
                            "points and quotes that would only repeat a short clip's summary); "
                            "every quote verbatim in the transcript.")
def enriched_summary_check(context: dg.AssetCheckExecutionContext,
                           igs: IgsSettings) -> dg.AssetCheckResult:
    note = claims(context, igs.get().media_dir).load("vault_note")
    return _result(checks.check_enrichment(Path(note["note_path"])))


@dg.asset_check(asset="transcript", partitions_def=video_partitions,
                description="Speech coverage and words per minute plausible; no repeated "
                            "n-gram loops; no segment after the media's end.")
def transcript_check(context: dg.AssetCheckExecutionContext,
                     igs: IgsSettings) -> dg.AssetCheckResult:
    transcript = claims(context, igs.get().media_dir).load("transcript")
    data = load_transcript(Path(transcript["path"]))
    return _result(checks.check_transcript(data, transcript.get("duration")),
                   dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset="video_archive", partitions_def=video_partitions,
                description="Each archived file's size and the SHA-256 recorded as it was sent "
                            "match the local file (read back only without that record).")
def video_archive_check(context: dg.AssetCheckExecutionContext, igs: IgsSettings,
                        archive_target: ArchiveTarget) -> dg.AssetCheckResult:
    settings, handed = step_claims(context, igs, archive_target)
    video_download = handed.load("video_download")
    files, year = archive.download_files(video_download, present_only=True)
    if not files:
        return dg.AssetCheckResult(passed=True, description="nothing archived")
    problems = archive.make_archive(settings).verify(files, year, video_download["slug"])
    return dg.AssetCheckResult(
        passed=not problems, description="; ".join(problems) or f"{len(files)} file(s) match",
        metadata={"files": len(files), "mismatches": len(problems)},
    )


CHECK_KEYS = [dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in CHECKS]


def failed_checks(instance: dg.DagsterInstance, per_check: int = 50) -> list[dict]:
    """Partitions whose latest evaluation of a check failed (for `igs status`), newest first."""
    out = []
    for key in CHECK_KEYS:
        seen: set[str | None] = set()
        for record in check_executions(instance, key, per_check):
            if record.partition in seen or record.status == "PLANNED":
                continue
            seen.add(record.partition)
            if record.status == "FAILED":
                out.append({
                    "check": key.name, "partition": record.partition, "run_id": record.run_id,
                    "blocking": key.name in BLOCKING,
                    "description": record.description or "failed", "at": record.at,
                })
    return sorted(out, key=lambda c: -c["at"])
