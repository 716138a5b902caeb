"""wechatpy 1.8.18's own crypto test vectors (tests/test_crypto.py), through our endpoint."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
import xmltodict

from bot.channels.common import signature_matches
from handlers.app import init_app
from tests.conftest import make_config

TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"
ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
ENCRYPTED_XML = """<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>
<Encrypt><![CDATA[RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>
<AgentID><![CDATA[1]]></AgentID>
</xml>"""


def test_vector_signature_check() -> None:
    assert signature_matches(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", TOKEN, "1411443780", "437374425", ECHO
    )
    assert not signature_matches(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", TOKEN, "1411443780", "437374424", ECHO
    )


@pytest.fixture
async def vector_client(aiohttp_client: Any, db_url: str) -> Any:
    config = make_config(
        db_url,
        wechat__work__token=TOKEN,
        wechat__work__encoding_aes_key=AES_KEY,
        wechat__work__corp_id=CORP_ID,
        wechat__work__agent_id=1,
        # the vectors are from 2014: widen the window to accept them
        bot__timestamp_window_seconds=10**10,
    )
    return await aiohttp_client(init_app(config))


async def test_vector_echostr_verification(vector_client: Any) -> None:
    query = urlencode(
        {
            "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            "timestamp": "1411443780",
            "nonce": "437374425",
            "echostr": ECHO,
        }
    )
    resp = await vector_client.get(f"/wechat/work?{query}")
    assert resp.status == 200
    assert await resp.text() != ""


async def test_vector_echostr_with_wrong_nonce_is_refused(vector_client: Any) -> None:
    query = urlencode(
        {
            "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            "timestamp": "1411443780",
            "nonce": "437374424",
            "echostr": ECHO,
        }
    )
    assert (await vector_client.get(f"/wechat/work?{query}")).status == 403


async def test_vector_message_decrypts_and_is_answered(vector_client: Any) -> None:
    query = urlencode(
        {
            "msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
            "timestamp": "1411525903",
            "nonce": "461056294",
        }
    )
    resp = await vector_client.post(f"/wechat/work?{query}", data=ENCRYPTED_XML.encode())
    assert resp.status == 200
    outer = xmltodict.parse(await resp.text())["xml"]
    assert outer["Encrypt"]
    # The vector's text is "test" from user "messense": answered with the fallback reply.
    from tests.support.wechat import decrypt_reply

    reply = decrypt_reply(await resp.text(), AES_KEY, CORP_ID, TOKEN)
    assert reply["ToUserName"] == "messense"
    assert "菜单" in reply["Content"]
