"""The one error a suite file can raise, and the helpers that keep its message one safe line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _clean(text: str, limit: int = 2000) -> str:
    """``text`` on one line: control characters escaped, at most ``limit`` characters."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any, limit: int = 60) -> str:
    """A short repr of a user-supplied value for a message."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a message must never fail
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _child_field(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    key = key if re.fullmatch(r"[\w.:+-]+", key) else repr(key)
    return f"{parent}.{key}" if parent else key


class SuiteError(Exception):
    """A malformed suite: names the file and the field (one line)."""

    def __init__(self, path: str | Path, field: str, message: str):
        self.path, self.field, self.message = _clean(str(path), 500), _clean(field, 160), _clean(message)
        where = f"{self.path}: {self.field}: " if self.field else f"{self.path}: "
        super().__init__(where + self.message)
