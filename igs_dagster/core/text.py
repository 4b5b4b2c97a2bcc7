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


def failure_reason(description: str | None, message: str | None, cls_name: str | None,
                   limit: int | None = None) -> str:
    """One line for a failed step: the description we raised with `Failure`, else the error's
    first line, else its class (read from Dagster events or from the webserver alike)."""
    if description and description.strip():
        return first_line(description, limit)
    if message is not None or cls_name is not None:
        return first_line(message, limit) or cls_name or "step failed"
    return "step failed"
