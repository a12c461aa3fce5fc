"""Errors that carry enough context for a user to fix their input.

Every error a user can cause by writing a bad file or argument is an
``ArchsearchError``; the CLI prints its message and exits with status 2.
"""

from __future__ import annotations

from typing import Any


class ArchsearchError(Exception):
    """Base class of every error that is the user's input, not a bug."""


class SpecError(ArchsearchError):
    """A value in a spec, space, study or argument is not allowed.

    The message names where the value came from (``source``: a file or a CLI
    flag), the key path inside it, the bad value and what is allowed.
    """

    def __init__(self, message: str, *, path: str = "", value: Any = None, allowed: str = "",
                 source: str = "") -> None:
        self.message = message
        self.path = path
        self.value = value
        self.allowed = allowed
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        where = ": ".join(part for part in (self.source, self.path) if part)
        text = f"{where}: {self.message}" if where else self.message
        if self.value is not None:
            text += f" (got {self.value!r})"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        return text

    def with_source(self, source: str) -> "SpecError":
        """Return the same error, now naming the file or flag it came from."""
        if self.source:
            return self
        return type(self)(self.message, path=self.path, value=self.value, allowed=self.allowed,
                          source=source)

    def under(self, prefix: str) -> "SpecError":
        """Return the same error with its key path nested under ``prefix``."""
        path = f"{prefix}.{self.path}" if self.path and not self.path.startswith("[") else f"{prefix}{self.path}"
        return type(self)(self.message, path=path, value=self.value, allowed=self.allowed,
                          source=self.source)


class OutputError(ArchsearchError, OSError):
    """An output path cannot be written (permission, a file where a directory should be, a full disk);
    the message names the path and the operating system's reason. Still an OSError to code that asks."""
