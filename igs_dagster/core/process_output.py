"""A supervised command's output file: its redacted end (`read_tail`: redaction before the cut,
so a secret split by the window is still caught), the stored file rewritten without secrets
(`redact_file`), and new output fed live to a callback as redacted text (`OutputStreamer`)."""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from pathlib import Path

from igs_dagster.core.fsutil import atomic_writer
from igs_dagster.core.redact import Redactor


def read_tail(path: Path, redact: Redactor, chars: int) -> str:
    """The last `chars` characters of `path`, redacted. A margin before the window is read and
    redacted with it, so a secret straddling the window's start is still matched."""
    want = chars * 4 + redact.max_bytes + 4
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - want))
            data = handle.read()
    except OSError:
        return ""
    return redact(data.decode("utf-8", "replace"))[-chars:]


def redact_file(path: Path, redact: Redactor) -> None:
    """Rewrite a stored output without secrets (only when one actually appears), streaming:
    any size, and a secret split across read chunks is still found. Atomic, 0600."""
    if not redact:
        return
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            keep = b""
            while chunk := handle.read(1 << 20):
                if redact.contains_secret(keep + chunk):
                    break
                keep = chunk[-redact.max_bytes:]
            else:
                return
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        pending = ""
        with atomic_writer(path) as out, open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                safe, pending = redact.split_safe(pending + decoder.decode(chunk))
                out.write(safe.encode("utf-8", "surrogateescape"))
            rest = redact(pending + decoder.decode(b"", final=True))
            out.write(rest.encode("utf-8", "surrogateescape"))
    except OSError:
        return


class OutputStreamer:
    """Feed new output to `on_output` as redacted text, holding back possible secret halves."""

    def __init__(self, path: Path, redact: Redactor, on_output: Callable[[str], None], skip: int):
        self._file = open(path, "rb")  # noqa: SIM115 - closed in finish()/close()
        self._file.seek(skip)  # past our own header: only what the process writes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._redact = redact
        self._on_output = on_output
        self._pending = ""

    def pump(self) -> None:
        data = self._file.read(1024 * 1024)
        if not data:
            return
        text = self._pending + self._decoder.decode(data)
        safe, self._pending = self._redact.split_safe(text)
        if safe:
            self._on_output(safe)

    def finish(self) -> None:
        try:
            while True:
                before = self._file.tell()
                self.pump()
                if self._file.tell() == before:
                    break
            rest = self._redact(self._pending + self._decoder.decode(b"", final=True))
            self._pending = ""
            if rest:
                self._on_output(rest)
        finally:
            self._file.close()

    def close(self) -> None:
        self._file.close()
