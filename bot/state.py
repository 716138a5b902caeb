"""A conversation's stored state: what the message store loads and saves, and what a handler
reads and changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConversationState:
    """The stored state of one conversation. ``name`` is a string such as ``"form:medicine"``
    so it survives a restart; ``data`` is JSON. Changes are saved after the handler returns."""

    key: str
    name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    dirty: bool = False
    exists: bool = False

    def set(self, name: str | None, **data: Any) -> None:
        self.name = name
        self.data = dict(data)
        self.dirty = True

    def update(self, **data: Any) -> None:
        self.data.update(data)
        self.dirty = True

    def clear(self) -> None:
        if self.name is not None or self.data:
            self.set(None)
