"""The video pipeline's plain Python (no Dagster): one module per stage.

intake (events in: checked, keyed, queued), ids (URL → partition key), download (yt-dlp),
local_media (files and pasted text), archive (NAS over SFTP or a folder: archive_sftp,
archive_local, archive_files), transcribe (audio, whisper_backends, transcript: the JSON),
notes (the vault note; frontmatter, note_slugs, daily: its daily-note line), enrich/ (summary,
key points, … by the built-in enricher or an agent CLI), search/ (the vault's search index).
A new source goes in ids + download/local_media; a new enrichment step in enrich/.
"""
