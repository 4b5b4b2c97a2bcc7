"""What every `igs` command group shares: the one-line parser, argument types, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from igs_dagster.core.errors import IgsError, PermanentError

MAX_TEXT_FILE_BYTES = 20 * 1024 * 1024  # a transcript text is at most 5M characters


class UsageError(IgsError):
    """The command line itself is wrong (argparse)."""


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, default=str))


def print_answer(args: argparse.Namespace, data: object, text: Callable[[], str]) -> None:
    """A command's answer: `data` as JSON with --json, else the text `text()` makes."""
    if args.json:
        print_json(data)
    else:
        print(text())


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `igs: error: <what> (see 'igs send --help')`; a
    mistyped command or choice gets the closest one (`did you mean 'send'?`)."""

    def error(self, message: str):  # type: ignore[override]
        import difflib
        import re

        typo = re.match(r"argument .+?: invalid choice: '(.+?)' \(choose from (.+)\)$", message)
        if typo:
            choices = re.findall(r"'([^']*)'", typo[2])
            close = difflib.get_close_matches(typo[1], choices, n=1, cutoff=0.6)
            what = f"unknown {'command' if self._subparsers is not None else 'choice'} '{typo[1]}'"
            hint = f": did you mean '{close[0]}'?" if close else f" (one of: {', '.join(choices)})"
            message = f"{what}{hint}"
        raise UsageError(f"{message} (see '{self.prog} --help')")


def count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "number"
    return parse


def port(text: str) -> int:
    value = count(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value



def read_text_file(name: str) -> str:
    if name == "-":
        data = sys.stdin.buffer.read(MAX_TEXT_FILE_BYTES + 1)
        shown = "stdin"
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise PermanentError(f"text file {name}: {'not a regular file' if path.exists() else 'no such file'}")
        if path.stat().st_size > MAX_TEXT_FILE_BYTES:
            raise PermanentError(f"text file {name} is larger than {MAX_TEXT_FILE_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
        shown = name
    if len(data) > MAX_TEXT_FILE_BYTES:
        raise PermanentError(f"text from {shown} is larger than {MAX_TEXT_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PermanentError(f"text file {shown} is not UTF-8 text") from None
    if "\x00" in text:
        raise PermanentError(f"text file {shown} is binary, not text")
    return text
