"""Access tokens in the database, so every instance shares one token per app."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.tokens import CachedToken, Fetch
from bot.storage.models import AccessToken, utcnow
from bot.storage.repo import upsert_insert


class SqlTokenStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, key: str) -> CachedToken | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(AccessToken.token, AccessToken.expires_at).where(AccessToken.key == key)
                )
            ).one_or_none()
        return CachedToken(row.token, row.expires_at) if row else None

    async def refresh(
        self,
        key: str,
        usable: Callable[[CachedToken | None], bool],
        fetch: Fetch,
        clock: Callable[[], float],
    ) -> CachedToken:
        async with self.sessions.begin() as session:
            await _lock(session, key)
            row = (
                await session.execute(
                    select(AccessToken.token, AccessToken.expires_at).where(AccessToken.key == key)
                )
            ).one_or_none()
            cached = CachedToken(row.token, row.expires_at) if row else None
            if cached is not None and usable(cached):
                return cached
            token, expires_in = await fetch()
            fresh = CachedToken(token, clock() + expires_in)
            stmt = upsert_insert(session, AccessToken).values(
                key=key, token=token, expires_at=fresh.expires_at, updated_at=utcnow()
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["key"],
                    set_={"token": token, "expires_at": fresh.expires_at, "updated_at": utcnow()},
                )
            )
            return fresh

    async def drop(self, key: str, token: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                delete(AccessToken).where(AccessToken.key == key, AccessToken.token == token)
            )


async def _lock(session: AsyncSession, key: str) -> None:
    """A lock every instance respects, held until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": digest})
    else:
        # Any write makes SQLite take its database write lock until commit.
        await session.execute(
            update(AccessToken).where(AccessToken.key == key).values(key=AccessToken.key)
        )
