"""How playbook problems are collected and reported: every message names file, playbook and field.

The parsers (`schema`, `conditions`, `references`, `steps`, `parse`) add problems to one
`Problems` per file as they go, so a folder is checked in one pass and every error is reported;
`loader` turns the lot into a `PlaybookErrors`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PlaybookErrors(Exception):
    """Every problem found in a playbook folder, one message per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors)
        self.errors = errors

    def __str__(self) -> str:
        count = len(self.errors)
        return f"{count} playbook error{'s' if count != 1 else ''}:\n" + "\n".join(f"  {e}" for e in self.errors)


class Problems:
    """The problems of one file; the playbook name is added to each message once it is known."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.name: str | None = None
        self._found: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self._found.append((path, message))

    def __len__(self) -> int:
        return len(self._found)

    def messages(self) -> list[str]:
        prefix = f"{self.file}: playbook '{self.name}': " if self.name else f"{self.file}: "
        return [f"{prefix}{path}: {message}" if path else f"{prefix}{message}" for path, message in self._found]


def at(path: str, key: str) -> str:
    """The path of `key` inside the mapping at `path` (the top level is the empty path)."""
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    return f"{path}[{index}]"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """A hint for a misspelt name, to append to a message; empty when nothing is close."""
    choices = list(options)
    close = [option for option in choices if len(word) >= 3 and option.startswith(word)]
    close = close or difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
