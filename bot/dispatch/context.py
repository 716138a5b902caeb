"""What a handler receives: the message, the user, the conversation state and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.messages import Incoming, Reply

if TYPE_CHECKING:
    from bot.services import Services


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


@dataclass
class Context:
    message: Incoming
    state: ConversationState
    services: Services
    user_id: int | None = None  # row id in the users table
    extra: dict[str, Any] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def folded(self) -> str:
        """The text without punctuation, spaces, case or full-width forms (computed once:
        every word filter compares against it)."""
        cached = self.extra.get("_folded")
        if cached is None:
            from bot.dispatch.filters import normalise

            cached = self.extra["_folded"] = normalise(self.message.text)
        return str(cached)

    def render(self, template: str, **values: Any) -> str:
        return self.services.render(template, message=self.message, **values)

    def reply(self, text: str) -> None:
        """Add a reply; a handler may also simply return text."""
        self.replies.append(Reply(text))
