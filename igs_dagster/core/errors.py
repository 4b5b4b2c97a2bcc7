"""Error types whose message is shown to the user as one line.

`PermanentError` marks failures that retrying cannot fix (bad URL, 404, private video,
corrupt media): Dagster assets turn it into `dg.Failure(allow_retries=False)`.
Any other exception is treated as transient and retried by the step's RetryPolicy.
"""


class IgsError(Exception):
    """An error with a one-line, user-facing message."""


class PermanentError(IgsError):
    """Retrying cannot help: the input or the remote resource is wrong."""


class SettingsError(IgsError):
    """The configuration is missing or invalid."""
