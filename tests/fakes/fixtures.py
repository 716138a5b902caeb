"""pytest fixtures for the fake WeChat API server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.wechat_server import FakeWeChat


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat()
    await fake.start()
    yield fake
    await fake.close()
