"""What every figure shares: its record, statistics, the machine, word error rate, timing."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Record:
    """One figure: its goal, the measured median and range over runs, and where time went."""

    figure: int
    name: str
    goal: str  # human-readable, e.g. "≤ 1.15×"
    limit: float | None  # the number `measured` is compared with (≤)
    unit: str  # "×", "s", "KB", "MB"
    measured: float | None = None  # median of `runs`
    low: float | None = None
    high: float | None = None
    runs: list[float] = field(default_factory=list)
    met: bool | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0  # time the figure took to measure

    def set_runs(self, values: Sequence[float]) -> None:
        self.runs = [round(float(v), 4) for v in values]
        if self.runs:
            self.measured = round(statistics.median(self.runs), 4)
            self.low, self.high = min(self.runs), max(self.runs)
            self.met = self.measured <= self.limit if self.limit is not None else None

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_json(self) -> dict:
        return asdict(self)

    def shown(self) -> str:
        """`1.08× [1.05–1.12]` (median [range])."""
        if self.skipped:
            return "skipped"
        if self.measured is None:
            return "n/a"
        fmt = _fmt(self.unit)
        text = f"{fmt(self.measured)}{self.unit_suffix}"
        if len(self.runs) > 1:
            text += f" [{fmt(self.low)}–{fmt(self.high)}]"
        return text

    @property
    def unit_suffix(self) -> str:
        return self.unit if self.unit == "×" else f" {self.unit}"


def _fmt(unit: str) -> Callable[[float | None], str]:
    def fmt(value: float | None) -> str:
        if value is None:
            return "?"
        if unit == "×":
            return f"{value:.3f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.2f}"

    return fmt


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[i] / b[i] for runs measured side by side (alternating), the unit of every ratio."""
    return [x / y for x, y in zip(a, b, strict=True) if y > 0]


# ---- the machine --------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def load_text(load: list[float]) -> str:
    """A load average as a figure's note shows it: `1.2, 0.8, 0.5`."""
    return ", ".join(f"{x:.1f}" for x in load)


def machine() -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "dagster": _version("dagster"),
        "faster_whisper": _version("faster-whisper"),
        "ctranslate2": _version("ctranslate2"),
        "espeak_ng": _espeak_version(),
        "load_average_at_start": load_average(),
        "bytecode_cache": os.environ.get("PYTHONPYCACHEPREFIX") or (
            "off (PYTHONDONTWRITEBYTECODE)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "default"
        ),
    }


def _espeak_version() -> str:
    from bench.speech import espeak_path

    exe = espeak_path()
    if exe is None:
        return "missing"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return found.group(1) if found else out.strip()[:40]


def machine_line(m: dict[str, Any]) -> str:
    load = m.get("load_average_at_start")
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os'].split('-with-')[0]}, "
        f"Python {m['python']}, load {load[0] if load else '?'}"
    )


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---- word error rate ----------------------------------------------------------------------

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, word in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{_number_words(n // size)} {word}" + (f" {_number_words(rest)}" if rest else "")
    return str(n)


def normalize_words(text: str) -> list[str]:
    """Lowercase words without punctuation (letters of any language kept); digits spelled out
    in English (Whisper writes "100 days"; the Spanish and German texts have no digits)."""
    text = text.lower().replace("-", " ").replace("’", "'")
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    text = re.sub(r"\d+", lambda m: f" {_number_words(int(m.group()))} ", text)
    text = re.sub(r"[^\w' ]+|[\d_]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level Levenshtein distance / reference words (numpy rows)."""
    import numpy as np

    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    vocab: dict[str, int] = {}
    r = np.array([vocab.setdefault(w, len(vocab)) for w in ref], dtype=np.int64)
    h = np.array([vocab.setdefault(w, len(vocab)) for w in hyp], dtype=np.int64)
    cols = np.arange(len(h) + 1, dtype=np.int64)
    prev = cols.copy()
    for i, word in enumerate(r, 1):
        # substitution/match and deletion, then insertions as a running minimum
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(prev[:-1] + (h != word), prev[1:] + 1)
        cur = np.minimum.accumulate(cur - cols) + cols
        prev = cur
    return float(prev[-1]) / len(ref)


# ---- processes ----------------------------------------------------------------------------


def run_json(argv: list[str], env: dict[str, str] | None = None, timeout: float = 3600) -> tuple[dict, float]:
    """Run a child that prints one JSON object last on stdout; return it and the wall time."""
    started = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last), wall


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, from /proc (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def dur(seconds: float) -> str:
    """11 s, 20 s, 1 min, 60 min."""
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
