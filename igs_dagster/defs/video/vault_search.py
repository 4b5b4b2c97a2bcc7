"""Search index and related notes, one partition (video) at a time.

Claim check: the index is a SQLite file in the data folder (video/search/index.py); Dagster
keeps the counts. `related_notes` runs after enrichment (the enrichers keep its block as it
is: video/noteblocks.py), writes this note's `## Related in the vault` block, and
refreshes the block of each older note it relates to, touching nothing else in them.
"""


from pathlib import Path

import dagster as dg

from igs_dagster.core.fsutil import private_file
from igs_dagster.defs.resources import IgsSettings, Vault
from igs_dagster.defs.retries import RETRY, permanent_failures, retrying
from igs_dagster.defs.video.assets import COMMON
from igs_dagster.defs.video.claims import step_claims
from igs_dagster.defs.video.vault_guard import checked_vault
from igs_dagster.video import noteblocks
from igs_dagster.video.ids import timestamp_url
from igs_dagster.video.search import related
from igs_dagster.video.search.embed import semantic_available
from igs_dagster.video.search.index import NoteDoc, SearchIndex, index_path
from igs_dagster.video.search.indexer import index_note
from igs_dagster.video.transcript import load_transcript


def note_doc(key: str, video_download: dict, vault_note: dict) -> NoteDoc:
    published = str(video_download.get("upload_date") or "")
    if len(published) == 8 and published.isdigit():
        published = f"{published[:4]}-{published[4:6]}-{published[6:]}"
    web = video_download.get("source_kind") in ("youtube", "url")
    return NoteDoc(
        video_id=key, slug=vault_note["slug"], title=video_download["title"],
        note_path=vault_note["note_path"], channel=video_download.get("channel") or None,
        day=published or vault_note.get("daily"),
        source_url=(video_download.get("source_url") or None) if web else None,
    )


def doc_timestamp_url(doc: NoteDoc, seconds: int) -> str | None:
    return timestamp_url(doc.source_url, seconds) if doc.source_url else None


@dg.asset(**COMMON, **retrying(RETRY), kinds={"sqlite"},
          deps=["video_download", "transcript", "vault_note"], description=(
    "The note's transcript in the search index (data folder, SQLite): passages of a few "
    "sentences with start times, FTS5 words and MiniLM vectors. Notes deleted from the vault "
    "leave the index here too (never while the vault itself is missing)."
))
def search_index(context: dg.AssetExecutionContext, igs: IgsSettings,
                 vault: Vault) -> dg.MaterializeResult:
    semantic = semantic_available()
    if not semantic:
        context.log.warning("no embedding model installed: full-text index only")
    settings, handed = step_claims(context, igs, vault)
    video_download, transcript, vault_note = handed.load_each(
        "video_download", "transcript", "vault_note")
    with permanent_failures():
        vault = checked_vault(settings)
        data = load_transcript(Path(transcript["path"]))
        doc = note_doc(context.partition_key, video_download, vault_note)
        # 0600 before SQLite opens it (its WAL and SHM follow), whatever this worker's umask
        with SearchIndex(private_file(index_path(settings.data_dir))) as index:
            pruned = index.prune_missing(vault)
            result = index_note(index, doc, data.get("segments") or [], semantic=semantic)
            stats = index.stats()
    handed.save("search_index", {"index": str(index_path(settings.data_dir)),
                                 "passages": result.passages, "semantic": semantic})
    return dg.MaterializeResult(metadata={
        "passages": result.passages, "changed": result.changed, "semantic": semantic,
        "pruned_notes": len(pruned), "index_notes": stats["notes"],
        "index_bytes": stats["bytes"],
    })


@dg.asset(**COMMON, **retrying(RETRY), kinds={"markdown"},
          deps=["search_index", "vault_note", "enriched_summary"], description=(
    "`## Related in the vault`: wikilinks to the most similar notes (above a threshold), "
    "with the passage that matched; older related notes get their block refreshed."
))
def related_notes(context: dg.AssetExecutionContext, igs: IgsSettings,
                  vault: Vault) -> dg.MaterializeResult:
    settings, handed = step_claims(context, igs, vault)
    vault_note = handed.load("vault_note")
    if not handed.load("search_index").get("semantic"):
        handed.save("related_notes", {"related": [], "updated": []})
        return dg.MaterializeResult(metadata={"related": dg.MetadataValue.json([]),
                                              "older_notes_updated": 0})
    with permanent_failures(), SearchIndex(index_path(settings.data_dir)) as index:
        index.prune_missing(checked_vault(settings))
        mine = related.related_notes(index, context.partition_key)
        noteblocks.update_note_block(
            Path(vault_note["note_path"]), "related",
            related.render_block(mine, doc_timestamp_url),
        )
        updated = []
        for item in mine:  # the other side of each link, without touching its enrichment
            theirs = related.related_notes(index, item.note.video_id)
            if noteblocks.update_note_block(
                Path(item.note.note_path), "related",
                related.render_block(theirs, doc_timestamp_url),
            ):
                updated.append(item.note.slug)
    handed.save("related_notes", {"related": [r.note.slug for r in mine], "updated": updated})
    return dg.MaterializeResult(metadata={
        "related": dg.MetadataValue.json([{"slug": r.note.slug, "score": r.score} for r in mine]),
        "older_notes_updated": len(updated),
    })
