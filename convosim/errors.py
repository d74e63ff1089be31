"""User-facing errors: each names the file (and field) at fault so a one-line message suffices."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ConvosimError(Exception):
    """An error caused by user input; the CLI prints it on one line and exits non-zero."""

    def __init__(self, path: str | Path | None, field: str | None, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        return ": ".join([*parts, self.message])


def location(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """Render a pydantic error location as `a.b[2].c`."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def from_validation_error(path: str | Path, exc: ValidationError, prefix: str = "") -> ConvosimError:
    """Turn the first pydantic error into a ConvosimError naming the file and field."""
    err = exc.errors(include_url=False)[0]
    return ConvosimError(path, location(tuple(err["loc"]), prefix), err["msg"])
