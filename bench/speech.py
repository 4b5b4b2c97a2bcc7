"""Realistic long speech for the benchmarks: espeak-ng reads public-domain speeches and essays.

`build_speech(seconds)` synthesizes paragraphs of `speech_text.txt` (first in order, then
reshuffled passes), varying the voice, the speed and the pauses between paragraphs, until the
clip is at least `seconds` long, and encodes it as an mp4 (a tiny still video track and AAC
audio, like a downloaded video). The words actually spoken are saved next to it as the
reference for word error rates. Clips are cached by their parameters in the cache folder.
`language="es"` or `"de"` reads `speech_text_es.txt` / `speech_text_de.txt` (original texts)
with espeak-ng's Spanish or German voices instead.

Needs the `espeak-ng` program (Debian/Ubuntu package `espeak-ng`, Homebrew `espeak-ng`).

    python -m bench.speech 300 out.mp4     # build a 5-minute clip
    python -m bench.speech 60 es.mp4 es    # a minute of Spanish
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

TEXT_FILE = Path(__file__).with_name("speech_text.txt")
ESPEAK_RATE = 22_050
# espeak-ng voices that exist in every espeak-ng install (no mbrola)
VOICES = ("en-us", "en-gb", "en-us+m3", "en-gb-x-rp", "en-us+m7", "en-029")
LANGUAGES = {  # language -> (text file, voices)
    "en": (TEXT_FILE, VOICES),
    "es": (TEXT_FILE.with_name("speech_text_es.txt"), ("es", "es-419", "es+m3", "es-419+f2")),
    "de": (TEXT_FILE.with_name("speech_text_de.txt"), ("de", "de+m3", "de+f2", "de+m7")),
}
GENERATOR_VERSION = 2  # bump when the output changes, to invalidate caches


class SpeechUnavailable(RuntimeError):
    """espeak-ng (or ffmpeg) is missing: figures that need long speech are skipped."""


@dataclass(frozen=True)
class Clip:
    path: Path
    seconds: float
    text: str  # the words spoken, in order

    @property
    def words(self) -> int:
        return len(self.text.split())


def espeak_path() -> str | None:
    """espeak-ng on PATH (IGS_BENCH_ESPEAK names another program; `none` acts as missing)."""
    import os

    return shutil.which(os.environ.get("IGS_BENCH_ESPEAK") or "espeak-ng")


def require_espeak() -> str:
    exe = espeak_path()
    if exe is None:
        raise SpeechUnavailable(
            "espeak-ng is not installed (apt-get install espeak-ng / brew install espeak-ng): "
            "long realistic speech cannot be generated"
        )
    return exe


def paragraphs(language: str = "en") -> list[str]:
    text = LANGUAGES[language][0].read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    blocks = re.split(r"\n\s*\n", "\n".join(lines))
    return [" ".join(b.split()) for b in blocks if b.strip()]


def _sentences(paragraph: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+", paragraph) if s]


def _synth(exe: str, text: str, voice: str, speed: int) -> bytes:
    """Raw 16-bit mono PCM at ESPEAK_RATE for `text`."""
    proc = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "--stdout"],
        input=text.encode("utf-8"), capture_output=True, check=True, timeout=300,
    )
    with wave.open(io.BytesIO(proc.stdout)) as wav:
        if wav.getframerate() != ESPEAK_RATE or wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise SpeechUnavailable(f"unexpected espeak-ng output format for voice {voice}")
        return wav.readframes(wav.getnframes())


def _silence(seconds: float) -> bytes:
    return b"\0\0" * int(seconds * ESPEAK_RATE)


def synthesize(seconds: float, seed: int = 1, language: str = "en") -> tuple[bytes, str]:
    """PCM (16-bit mono 22.05 kHz) of at least `seconds` of speech, and the words spoken."""
    exe = require_espeak()
    rng = random.Random(seed)
    paras = paragraphs(language)
    voices = LANGUAGES[language][1]
    pcm = bytearray()
    spoken: list[str] = []
    order = list(paras)
    while True:
        for paragraph in order:
            voice = rng.choice(voices)
            speed = rng.randint(150, 185)
            remaining = seconds - len(pcm) / 2 / ESPEAK_RATE
            if remaining <= 0:
                return bytes(pcm), " ".join(spoken)
            # whole paragraphs while there is room, then sentence by sentence to the end
            pieces = [paragraph] if remaining > 40 else _sentences(paragraph)
            for piece in pieces:
                pcm += _synth(exe, piece, voice, speed)
                spoken.append(piece)
                pcm += _silence(rng.uniform(0.25, 0.6))
                if len(pcm) / 2 / ESPEAK_RATE >= seconds:
                    return bytes(pcm), " ".join(spoken)
            pcm += _silence(rng.uniform(0.4, 1.0))
        order = list(paras)
        rng.shuffle(order)


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def encode_mp4(pcm: bytes, out: Path) -> None:
    """A tiny still video (1 fps) with the speech as AAC audio, written atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds = len(pcm) / 2 / ESPEAK_RATE
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        wav_path = Path(tmp) / "speech.wav"
        with wave.open(str(wav_path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(ESPEAK_RATE)
            wav.writeframes(pcm)
        part = Path(tmp) / "clip.mp4"
        subprocess.run(
            [ffmpeg_exe(), "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"color=c=0x224466:s=160x90:r=1:d={seconds:.3f}",
             "-i", str(wav_path),
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-aac_coder", "fast", "-b:a", "64k", "-shortest", "-movflags", "+faststart", str(part)],
            check=True, capture_output=True, timeout=1800,
        )
        part.replace(out)


def cache_dir() -> Path:
    import os

    base = os.environ.get("IGS_BENCH_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root / "igs-bench") if not os.environ.get("IGS_BENCH_CACHE") else root


def build_speech(
    seconds: float, seed: int = 1, folder: Path | None = None, language: str = "en"
) -> Clip:
    """An mp4 of at least `seconds` of varied speech (cached), with its reference text."""
    folder = folder or cache_dir()
    lang = "" if language == "en" else f"-{language}"
    name = f"speech{lang}-{int(seconds)}s-seed{seed}-v{GENERATOR_VERSION}"
    mp4, ref = folder / f"{name}.mp4", folder / f"{name}.json"
    if mp4.is_file() and ref.is_file():
        data = json.loads(ref.read_text(encoding="utf-8"))
        return Clip(mp4, data["seconds"], data["text"])
    pcm, text = synthesize(seconds, seed, language)
    encode_mp4(pcm, mp4)
    actual = round(len(pcm) / 2 / ESPEAK_RATE, 3)
    ref.write_text(json.dumps({"seconds": actual, "text": text}), encoding="utf-8")
    return Clip(mp4, actual, text)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] not in LANGUAGES):
        print(f"usage: python -m bench.speech SECONDS OUT.mp4 [{'|'.join(LANGUAGES)}]",
              file=sys.stderr)
        return 2
    clip = build_speech(float(argv[0]), language=argv[2] if len(argv) == 3 else "en")
    out = Path(argv[1])
    shutil.copyfile(clip.path, out)
    out.with_suffix(".txt").write_text(clip.text + "\n", encoding="utf-8")
    print(f"{out}: {clip.seconds:.1f} s, {clip.words} words (reference text in {out.with_suffix('.txt')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
