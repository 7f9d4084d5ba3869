"""Stop paying for a broken recipe: when the first FOVs to finish all fail with the same
error (same exception type and message), no further FOV is worth starting.

Both executors feed a ``BrokenRecipeWatch`` as FOVs end; the error of a FOV is its worker's
own error line (``process-fov: error: FOV <fov>: <error>``) without who said it and which FOV.
"""

from __future__ import annotations

DEFAULT_MAX_FAILURES = 3


def error_line(lines: list[str]) -> str | None:
    """The worker's own error line: the last line of its log with ``: error: ``."""
    for line in reversed(lines or []):
        if ": error: " in line:
            return line.strip()
    return None


def signature(reason: str, fov: str | None) -> str:
    """``process-fov: error: FOV A1: recipe raised ValueError: bad`` -> ``recipe raised ValueError: bad``."""
    text = reason.strip()
    if ": error: " in text:
        text = text.split(": error: ", 1)[1]
    prefix = f"FOV {fov}: "
    return text[len(prefix):] if fov and text.startswith(prefix) else text


class BrokenRecipeWatch:
    """Trips when ``max_failures`` FOVs have failed, all with one error, and none succeeded."""

    def __init__(self, max_failures: int | None = DEFAULT_MAX_FAILURES) -> None:
        self.max_failures = max_failures
        self.succeeded = 0
        self.failed: list[tuple[str, str]] = []  # (fov, error)

    def add(self, fov: str, ok: bool, error: str = "") -> None:
        if ok:
            self.succeeded += 1
        else:
            self.failed.append((fov, error))

    @property
    def error(self) -> str | None:
        """The one error every failed FOV shares, once the watch has tripped; else None."""
        if not self.max_failures or self.succeeded or len(self.failed) < self.max_failures:
            return None
        errors = {e for _, e in self.failed}
        return errors.pop() if len(errors) == 1 else None

    @property
    def fovs(self) -> list[str]:
        return [f for f, _ in self.failed]
