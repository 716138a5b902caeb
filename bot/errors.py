"""Errors every part of the service may raise."""

from __future__ import annotations

from pathlib import Path


class ContentError(ValueError):
    """Bad content (knowledge base, forms, broadcasts, cadres …); the message names the file and,
    when known, the entry."""

    def __init__(self, path: Path, message: str, entry_id: str | None = None) -> None:
        where = f"{path}" if entry_id is None else f"{path} [{entry_id}]"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.entry_id = entry_id
