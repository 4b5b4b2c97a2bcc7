"""What an enricher reports back (the asset records it as metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EnrichResult:
    enricher: str  # "builtin" or the agent tool name
    method: str
    duration_s: float
    note_path: Path
    preview: str
    sections: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "enricher": self.enricher,
            "method": self.method,
            "duration_s": round(self.duration_s, 3),
            "note_path": str(self.note_path),
            "preview": self.preview,
            "sections": list(self.sections),
        }
