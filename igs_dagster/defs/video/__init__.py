"""Video ingest: URL or file → download → archive → transcript → vault note → enrichment."""
