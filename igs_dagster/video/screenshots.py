"""Screenshots for a video note: frames at the key points and at scene changes.

The bundled ffmpeg (imageio-ffmpeg) does all the work, no image library: scene changes come
from its `scene` score on key frames only (fast: no full decode), each chosen frame is written
as a small JPEG together with a 16x16 grey thumbnail on stdout, which screens out near-black
frames (mean brightness) and near-duplicates (mean difference from a frame already kept).
At most one frame per two minutes (one for shorter clips). The note's attachment folder holds
only the current set: re-running rewrites nothing that is unchanged and removes leftovers.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.inert import inert, link_target, plain

SPACING_S = 120.0
WIDTH = 480
BLACK_LUMA = 18  # mean of 0..255
DUPLICATE_DIFF = 8.0  # mean absolute difference of the 16x16 grey thumbnails
SCENE_THRESHOLD = 0.3
ATTACHMENTS = ("Resources", "videos", "attachments")
_TIMEOUT_S = 300


@dataclass(frozen=True)
class Shot:
    seconds: int
    path: Path
    caption: str  # the key point it illustrates ('' for a scene change)


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def has_video(media: Path) -> bool:
    """True when the file has a real video stream (cover art in an mp3 doesn't count)."""
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(media)],
                          capture_output=True, text=True, errors="replace", timeout=60)
    return any(" Video: " in line and "attached pic" not in line
               for line in proc.stderr.splitlines())


_PTS = re.compile(r"pts_time:([0-9.]+)")


def scene_changes(media: Path, threshold: float = SCENE_THRESHOLD) -> list[float]:
    """Seconds where the picture changes a lot, judged on key frames only."""
    proc = subprocess.run(
        # one decoder thread: with key frames only, frame threads just add start-up and
        # hand-over (0.12 -> 0.04 CPU-s on the 5-minute sample)
        [ffmpeg(), "-hide_banner", "-nostats", "-threads", "1", "-skip_frame", "nokey",
         "-i", str(media),
         "-an", "-sn", "-vf", f"scale=160:-2,select='gt(scene,{threshold})',showinfo",
         "-fps_mode", "vfr", "-f", "null", "-"],
        capture_output=True, text=True, errors="replace", timeout=_TIMEOUT_S,
    )
    return [float(m.group(1)) for m in _PTS.finditer(proc.stderr)]


def _grab(media: Path, seconds: float, out: Path) -> bytes | None:
    """Write the frame at `seconds` to `out` (JPEG); return its 16x16 grey thumbnail."""
    tmp = out.with_name(f".{out.stem}.tmp.jpg")
    proc = subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-ss", f"{seconds:.2f}",
         "-i", str(media), "-frames:v", "1", "-an",
         "-filter_complex", f"[0:v]split=2[a][b];[a]scale={WIDTH}:-2[big];"
                            "[b]scale=16:16,format=gray[small]",
         "-map", "[big]", "-q:v", "6", str(tmp),
         # -frames:v is per output: without it here the thumbnail output went on decoding
         # to the end of the file (0.6 s a frame on the 5-minute sample instead of 0.04 s)
         "-map", "[small]", "-frames:v", "1", "-f", "rawvideo", "pipe:1"],
        capture_output=True, timeout=_TIMEOUT_S,
    )
    if proc.returncode != 0 or len(proc.stdout) < 256 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(out)
    return proc.stdout[:256]


def _mean(thumb: bytes) -> float:
    return sum(thumb) / len(thumb)


def _diff(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def plan_times(duration: float, key_points: list[tuple[int, str]],
               scenes: list[float]) -> list[tuple[int, str]]:
    """Key points first, then scene changes, at least SPACING_S apart; at most one per two
    minutes (one for a shorter clip). A clip with neither gets its middle frame."""
    budget = max(1, int(duration // SPACING_S))
    chosen: list[tuple[int, str]] = []
    candidates = [(int(t), c) for t, c in key_points] + [(int(t), "") for t in scenes]
    if not candidates and duration > 0:
        candidates = [(int(duration / 2), "")]
    for t, caption in candidates:
        if len(chosen) >= budget:
            break
        if duration and t >= duration:
            continue
        if all(abs(t - other) >= SPACING_S for other, _ in chosen):
            chosen.append((t, caption))
    return sorted(chosen)


def attachments_dir(vault: Path, slug: str) -> Path:
    return fsutil.inside(Path(vault), *ATTACHMENTS, fsutil.safe_name(slug, "note slug"))


def take_screenshots(media: Path, vault: Path, slug: str, duration: float,
                     key_points: list[tuple[int, str]]) -> list[Shot]:
    """Frames for the note, in `<vault>/Resources/videos/attachments/<slug>/`."""
    folder = attachments_dir(vault, slug)
    folder.mkdir(parents=True, exist_ok=True)
    plan = plan_times(duration, key_points, scene_changes(media))
    kept: list[Shot] = []
    thumbs: list[bytes] = []
    for seconds, caption in plan:
        # an offset of a second avoids the fade or cut exactly at a scene change
        at = seconds + (0.0 if caption else 1.0)
        if duration and at >= duration:
            at = max(0.0, duration - 0.5)
        out = folder / f"{slug}-{seconds:05d}.jpg"
        thumb = _grab(media, at, out)
        if thumb is None or _mean(thumb) < BLACK_LUMA or any(
            _diff(thumb, t) < DUPLICATE_DIFF for t in thumbs
        ):
            out.unlink(missing_ok=True)
            continue
        thumbs.append(thumb)
        kept.append(Shot(seconds, out, caption))
    keep = {s.path.name for s in kept}
    for old in folder.iterdir():  # leftovers of an earlier run
        if old.is_file() and old.name not in keep:
            old.unlink()
    return kept


_KEY_POINT = re.compile(
    r"^[-*]\s+\*\*\[?(\d+(?::\d\d)+)\]?(?:\([^)]*\))?\*\*\s*(.*)$", re.MULTILINE
)


def key_points(note_text: str) -> list[tuple[int, str]]:
    """(seconds, text) of the Key Points bullets that start with a timestamp."""
    m = re.search(r"^## Key Points[ \t]*\n(.*?)(?=^## |\Z)", note_text, re.MULTILINE | re.DOTALL)
    if not m:
        return []
    out = []
    for stamp, text in _KEY_POINT.findall(m.group(1)):
        secs = 0
        for part in stamp.split(":"):
            secs = secs * 60 + int(part)
        out.append((secs, " ".join(text.split())))
    return out


def render_block(shots: list[Shot], vault: Path, timestamp_url=None) -> str | None:
    if not shots:
        return None
    from igs_dagster.video.notes import format_duration

    lines = ["## Screenshots", ""]
    for shot in shots:
        label = format_duration(shot.seconds)
        url = timestamp_url(shot.seconds) if timestamp_url else None
        stamp = f"**[{label}]({link_target(url)})**" if url else f"**{label}**"
        caption = inert(plain(shot.caption), "item") or "_scene change_"
        rel = shot.path.relative_to(vault).as_posix()
        lines += [f"- {stamp} {caption}", f"  ![[{rel}|{WIDTH}]]"]
    return "\n".join(lines) + "\n"
