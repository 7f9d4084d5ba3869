"""The one exception type the entry points turn into a one-line message and a non-zero exit."""

from __future__ import annotations

import sys
import traceback

from starfish_batch.core import printable


class StarfishBatchError(Exception):
    """A problem the user can fix: bad input, a missing file, an unreachable URL.

    The message names the thing at fault (the FOV, the file, the variable) in one line.
    """


class StorageError(StarfishBatchError):
    """A URL could not be read or written; ``reason`` is the cause alone, for callers that name the URL their way."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class AlreadyExists(StorageError):
    """An exclusive create found the object there: another writer claimed it first."""


class RecipeError(StarfishBatchError):
    """The recipe could not be loaded, or failed, or returned the wrong thing."""


# How a worker's error line says the recipe itself failed (not the data or the machine): the
# launcher reads these back to advise a new run with a fixed recipe rather than a resume.
RECIPE_RAISED = "recipe raised"
RECIPE_RETURNED = "process_fov returned"
RECIPE_EXITED = "the recipe exited"  # sys.exit or os._exit inside the recipe: "... (code N) before returning a table"


class ExperimentError(StarfishBatchError):
    """The experiment could not be opened or has no field of view."""


def report(prog: str, exc: BaseException) -> int:
    """Print the traceback of an unexpected error, then one line naming the fault; return 1.

    A StarfishBatchError is expected (bad input), so its one line is enough; anything else
    gets its traceback above the line so the log shows where it came from.
    """
    if not isinstance(exc, StarfishBatchError):
        traceback.print_exception(exc, file=sys.stderr)

    if isinstance(exc, StarfishBatchError):  # one line by design: a newline in it came from a name
        message = str(exc) or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    print(f"{prog}: error: {printable.line(message, 4 * printable.MAX_LINE_CHARS)}", file=sys.stderr, flush=True)
    return 1
