"""Channel-neutral message types: every channel turns its payload into an ``Incoming`` and
renders the ``Reply`` objects a handler returns. Handlers never see XML or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"
    EVENT = "event"
    OTHER = "other"  # image, voice, location, video, file … anything we cannot read


@dataclass(frozen=True, slots=True)
class Incoming:
    channel: str  # "mp", "work", "aibot", "dev"
    account: str  # the app id / corp id / bot id the message was sent to
    user_id: str  # the sender's identity on that channel (openid, userid)
    kind: Kind
    dedup_key: str  # unique per platform message; retries share it
    text: str = ""
    chat_id: str | None = None  # a group the message came from, None in a private chat
    event: str | None = None  # subscribe, unsubscribe, click, scan …
    event_key: str | None = None
    raw_type: str = ""  # the platform's own type name, for logs and the polite reply
    created_at: int = 0
    reply_url: str | None = None  # WeCom intelligent robot: where a late reply is posted

    @classmethod
    def from_stored(
        cls, channel: str, dedup_key: str, conversation_key: str, kind: str, text: str
    ) -> Incoming | None:
        """Rebuild a message from the message log (to finish it after a crash)."""
        try:
            _, account, chat, user = split_conversation_key(conversation_key)
        except ValueError:
            return None
        return cls(
            channel=channel,
            account=account,
            user_id=user,
            kind=Kind(kind),
            dedup_key=dedup_key,
            text=text,
            chat_id=chat,
        )

    def oversized(self) -> str | None:
        """What is longer than the tables hold, or None. Real ids are far shorter (an openid
        has 28 characters); the dedup key leaves room for the prefixes of the outbox keys
        made from it."""
        for name, value, limit in (
            ("account", self.account, 64),
            ("user id", self.user_id, 128),
            ("chat id", self.chat_id or "", 128),
            ("message id", self.dedup_key, 200),
            ("reply url", self.reply_url or "", 255),
            ("conversation", self.conversation_key, 255),
        ):
            if len(value) > limit:
                return f"{name} longer than {limit} characters"
        return None

    @property
    def conversation_key(self) -> str:
        # A form started in a group belongs to that user in that group.
        return f"{self.channel}:{self.account}:{self.chat_id or '-'}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    type: str = "text"  # text | markdown
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "text": self.text}


def split_conversation_key(key: str) -> tuple[str, str, str | None, str]:
    """channel, account, chat (None in private), user of ``Incoming.conversation_key``;
    ValueError when ``key`` is not one."""
    parts = key.split(":", 3)
    if len(parts) != 4:
        raise ValueError(f"not a conversation key: {key!r}")
    channel, account, chat, user = parts
    return channel, account, None if chat == "-" else chat, user
