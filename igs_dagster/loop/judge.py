"""The judge: PASS iff every configured check passed; otherwise FAIL with feedback.

The feedback holds the failing checks' output tails (bounded to a few KB in all) and the paths
of their full output files, for the implementor's next attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from igs_dagster.loop.checks import CheckResult
from igs_dagster.loop.prompt import truncate

FEEDBACK_MAX_BYTES = 6 * 1024


def _tail_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return "[... earlier output cut ...]\n" + data[-limit:].decode("utf-8", "ignore")


def verdict(
    check_results: Sequence[CheckResult], *, max_bytes: int = FEEDBACK_MAX_BYTES
) -> tuple[Literal["PASS", "FAIL"], str]:
    """("PASS", summary) or ("FAIL", feedback). No configured check at all is a FAIL."""
    configured = [c for c in check_results if c.configured]
    failed = [c for c in configured if not c.passed]
    lines = [c.line() for c in check_results]
    if configured and not failed:
        return "PASS", "All configured checks passed:\n" + "\n".join(f"- {x}" for x in lines)
    if not configured:
        return "FAIL", "No check is configured: nothing can show the story works."
    head = (
        f"{len(failed)} of {len(configured)} configured checks failed:\n"
        + "\n".join(f"- {x}" for x in lines)
        + "\n"
    )
    budget = max(512, (max_bytes - len(head.encode("utf-8"))) // len(failed) - 200)
    blocks = [
        f"\n### {c.name} failed ({c.reason}): `{c.command}`\n"
        f"Full output: {c.output_path}\n\n```\n{_tail_bytes(c.tail.rstrip(), budget)}\n```\n"
        for c in failed
    ]
    return "FAIL", truncate(head + "".join(blocks), max_bytes + 256)
