"""Helpers every asset/op uses: retry policies, permanent failures, throttled progress logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from igs_dagster.core.errors import PermanentError

# Transient errors (network, NAS, a busy GPU) retry with exponential backoff and jitter.
RETRY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
NAS_RETRY = dg.RetryPolicy(
    max_retries=6, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# how many attempts a step's policy allows, as an op tag: Dagster's retry events do not say,
# and `igs send --wait` shows "attempt 2 of 4 in 10 s: <cause>" (defs/failures.py reads it)
MAX_ATTEMPTS_TAG = "igs/max_attempts"


def retrying(policy: dg.RetryPolicy, **op_tags: str) -> dict:
    """`retry_policy=` and `op_tags=` for an asset or op: the policy and its attempt count."""
    return {"retry_policy": policy,
            "op_tags": {**op_tags, MAX_ATTEMPTS_TAG: str(policy.max_retries + 1)}}


@contextmanager
def permanent_failures() -> Iterator[None]:
    """Turn PermanentError into a Failure that skips the retry policy, with a one-line reason."""
    try:
        yield
    except PermanentError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None


class ProgressLog:
    """Log progress at most every `every_pct` percent or `every_s` seconds."""

    def __init__(self, log, what: str, every_pct: float = 10, every_s: float = 15):
        self.log, self.what, self.every_pct, self.every_s = log, what, every_pct, every_s
        self._last_pct = -every_pct
        self._last_t = 0.0

    def __call__(self, pct: float | None, detail: str = "") -> None:
        now = time.monotonic()
        due = pct is not None and (pct >= 100 or pct - self._last_pct >= self.every_pct)
        if due or now - self._last_t >= self.every_s:
            self._last_pct = pct if pct is not None else self._last_pct
            self._last_t = now
            shown = f"{pct:5.1f}%" if pct is not None else "…"
            self.log.info(f"{self.what} {shown} {detail}".rstrip())
