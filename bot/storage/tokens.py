"""Access tokens in the database, so every instance shares one token per app."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.tokens import CachedToken
from bot.storage.models import AccessToken, utcnow
from bot.storage.repo import _insert


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

    async def put(self, key: str, token: str, expires_at: float) -> None:
        async with self.sessions.begin() as session:
            stmt = _insert(session, AccessToken).values(
                key=key, token=token, expires_at=expires_at, updated_at=utcnow()
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["key"],
                    set_={"token": token, "expires_at": expires_at, "updated_at": utcnow()},
                )
            )

    async def drop(self, key: str, token: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                delete(AccessToken).where(AccessToken.key == key, AccessToken.token == token)
            )
