"""pytest fixtures for the fake WeChat API server (registered by the root conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.wechat_server import FakeWeChat


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChat]:
    """A started fake WeChat / WeCom API on a free loopback port; ``.base_url`` points at it."""
    fake = FakeWeChat()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
