"""Real media the tests, drills and benchmarks share: the bundled sample, its words, and longer
clips made from it (no side effects on import, unlike conftest)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from igs_dagster.cli.demo import SAMPLE

SAMPLE_MP4 = SAMPLE  # 11 s, J. F. Kennedy 1961 (public domain): test pattern video + AAC speech
FIXTURE_MEDIA = Path(__file__).parent / "fixtures" / "media"
# what the suite allows session-wide (issue 23; conftest, DagsterEnv): local media from the
# temp folder and the fixtures, downloads from loopback. The fence tests set their own.
MEDIA_ROOTS = [tempfile.gettempdir(), str(FIXTURE_MEDIA), str(SAMPLE_MP4.parent)]
LOOPBACK = ["127.0.0.0/8", "::1"]
# Killing a worker mid-transcription needs a clip that takes a while: the 66 s one transcribes in
# about 3 s here (RTF ~0.05), a window a faster machine's poll can miss (the docker drill's did,
# in CI). The sample 20 times is 220 s of speech, about 10 s of transcription here.
KILL_CLIP_REPEAT = 20
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def repeat_clip(src: Path, times: int, out: Path) -> Path:
    """`src` concatenated `times` times (stream copy, ffmpeg from imageio-ffmpeg), written
    atomically; an existing `out` is reused."""
    import imageio_ffmpeg

    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("".join(f"file '{Path(src).resolve()}'\n" for _ in range(times)))
        part = Path(tmp) / out.name
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "concat",
             "-safe", "0", "-i", str(listing), "-c", "copy", str(part)],
            check=True, capture_output=True, timeout=600,
        )
        part.replace(out)
    return out
