"""Exceptions raised by exresearch.

One small tree, so that callers can catch everything from the package with
``except ExresearchError`` and still tell a bad study from a bad argument.
"""

from __future__ import annotations

__all__ = [
    "ExresearchError",
    "StudyValidationError",
    "ParameterError",
    "BuildError",
    "BuildEnvironmentError",
]


class ExresearchError(Exception):
    """Base class of every error raised by exresearch.

    ``exit_code`` is the command line's exit status for it: 2, bad input.
    """

    exit_code = 2


class StudyValidationError(ExresearchError):
    """A study folder breaks the input contract; ``problems`` lists every failure.

    Parameters
    ----------
    problems : pandas.DataFrame
        One row per problem with columns ``file, row, column, value, problem``
        (and ``severity``, ``"error"`` or ``"warning"``).
    message : str, optional
        Summary line; by default it counts the problems.
    """

    def __init__(self, problems, message: str | None = None):
        self.problems = problems
        n = len(problems)
        if message is None:
            message = f"the study has {n} problem{'s' if n != 1 else ''}"
        table = _format_table(problems)
        super().__init__(f"{message}:\n{table}" if table else message)


class ParameterError(ExresearchError, ValueError):
    """A function or notebook parameter has a value outside what it accepts."""


class BuildError(ExresearchError):
    """A batch build could not run or publish its reports."""


class BuildEnvironmentError(BuildError):
    """The machine cannot carry out a build (disk full, read-only or busy ``--out``, a
    kernel that cannot start); the command line exits 3."""

    exit_code = 3


def _format_table(problems, max_rows: int = 200) -> str:
    """Render the problem table as plain text for messages and the CLI."""
    try:
        if problems is None or len(problems) == 0:
            return ""
        shown = problems.head(max_rows)
        text = shown.to_string(index=False)
        if len(problems) > max_rows:
            text += f"\n... and {len(problems) - max_rows} more"
        return text
    except AttributeError:  # not a DataFrame: show as is
        return str(problems)
