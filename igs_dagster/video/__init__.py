"""The video pipeline's plain Python (no Dagster): one module per stage.

ids (URL → partition key), download (yt-dlp), local_media (files and pasted text), archive
(NAS over SFTP or a folder), transcribe (Whisper backends), notes (the vault note and daily
link), enrich/ (summary, key points, … by the built-in enricher or an agent CLI).
A new source goes in ids + download/local_media; a new enrichment step in enrich/.
"""
