"""What a handler receives: the message, the user, the conversation state and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.messages import Incoming, Reply
from bot.state import ConversationState
from bot.text import normalise

if TYPE_CHECKING:
    from bot.services import Services


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
            cached = self.extra["_folded"] = normalise(self.message.text)
        return str(cached)

    def render(self, template: str, **values: Any) -> str:
        return self.services.render(template, message=self.message, **values)

    def reply(self, text: str) -> None:
        """Add a reply; a handler may also simply return text."""
        self.replies.append(Reply(text))
