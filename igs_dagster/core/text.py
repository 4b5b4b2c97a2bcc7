"""Text shaping shared by errors, tables and logs: one line, clipped."""

from __future__ import annotations


def one_line(value: object, limit: int | None = None) -> str:
    """`value` (text or an exception) as one line of single-spaced words, clipped to `limit`.

    An exception with no message reads as its type name, so a reason is never empty.
    """
    text = " ".join(str(value or "").split())
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def first_line(value: object, limit: int | None = None) -> str:
    """The first non-empty line of `value`, stripped and clipped (tracebacks, tool output)."""
    for raw in str(value or "").splitlines():
        if raw.strip():
            return one_line(raw, limit)
    return type(value).__name__ if isinstance(value, BaseException) else ""


def table(rows: list[list[object]], header: list[str]) -> str:
    """A plain-text table: a header, a rule, then one line per row (trailing blanks trimmed);
    a cell with line breaks (a story title) is shown on one line."""
    rows = [[" ".join(str(c).split()) for c in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]

    def line(cells: list[object]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# Dagster's own wrappers around the error a step raised: "Exceeded max_retries of 3" (the last
# retry), RetryRequested, "Error occurred while executing op ..."; the cause is below them
WRAPPER_ERRORS = frozenset({
    "RetryRequested", "RetryRequestedFromPolicy", "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError", "DagsterMaxRetriesExceededError",
})


def _without_class(text: str, cls_name: str | None) -> str:
    """`pkg.module.Cls: message` (Dagster's serialized error) -> `message`."""
    if cls_name:
        head, sep, rest = text.partition(": ")
        if sep and (head == cls_name or head.endswith(f".{cls_name}")):
            return rest.strip()
    return text


def failure_reason(description: str | None, errors: list[tuple[str | None, str | None]],
                   limit: int | None = None) -> str:
    """One line for a failed step: the description we raised with `Failure`, else the error
    that caused it (`errors`: (message, class name) from the outermost error down its causes;
    Dagster's retry wrappers are skipped, so a step that ran out of retries shows why its last
    attempt failed, not "Exceeded max_retries of 3"), else its class (read from Dagster events
    or from the webserver alike)."""
    if description and description.strip():
        return first_line(description, limit)
    cause = next(((m, c) for m, c in errors
                  if c not in WRAPPER_ERRORS and not str(m or "").startswith("Exceeded max_retries")),
                 errors[0] if errors else None)
    if cause is None:
        return "step failed"
    message, cls_name = cause
    return first_line(_without_class(first_line(message), cls_name), limit) or cls_name or "step failed"


def with_attempts(reason: str, attempts: int) -> str:
    """`reason (after 4 attempts)`: a failure that retries did not fix says how often it tried."""
    return f"{reason} (after {attempts} attempts)" if attempts > 1 else reason
