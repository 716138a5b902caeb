"""Hostile and odd input on every channel, correctly signed, over real HTTP: nothing a sender
can put in a request reaches a 5xx or an ERROR in the log, and the service answers afterwards.

The payloads come from the shapes each platform really sends, with every field also drawn
from random JSON, random Unicode (lone surrogates, controls, digits of other scripts such as
①⓵፪), integers at the edges of float and 64-bit ranges, deep nesting and invalid bytes.
``make test`` runs a few examples per channel; ``make fuzz`` runs many more
(``UNIONBOT_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import xmltodict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_config
from tests.support import wechat
from tests.support.live import LiveServer, serve

EXAMPLES = int(os.environ.get("UNIONBOT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing kept between runs: CI starts from a clean checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Digits input methods offer (circled, full-width) and those of other scripts: str.isdigit()
# is true for all of them, int() fails for most.
ODD_DIGITS = "①②③④⑩⓵⓶⓿❶➀፪᧚１２３٣৩०"
EDGE_INTEGERS = [
    0,
    -1,
    1,
    2**31 - 1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    10**300,
]
WORDS = [
    "你好",
    "菜单",
    "人工",
    "转人工",
    "取消",
    "谢谢",
    "购药登记",
    "入会申请",
    "法律援助",
    "留言",
    "我的申请",
    "订阅",
    "老板拖欠三个月工资怎么办",
    "两盒",
    "]]>",
    "{{ 7 * 7 }}{% raw %}",
    "' OR 1=1 --",
    "@工会小助手 ",
    "#1 回复 好的",
    "#① 结案 已处理",
    "#99999999999999999999999999999 回复 好",
    "待办",
    "\u0000",
    "\ud800",
    "\udfff\ud83d",
]

# Any code point, lone surrogates and controls included.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
odd_numbers = st.text(st.sampled_from(ODD_DIGITS + "0123456789"), min_size=1, max_size=6)
texts = st.one_of(
    any_text,
    odd_numbers,
    st.sampled_from(WORDS),
    st.lists(st.sampled_from(WORDS + list(ODD_DIGITS)), max_size=5).map(" ".join),
    st.integers(2_000, 5_000).map(lambda n: "长" * n),
)
integers = st.one_of(st.sampled_from(EDGE_INTEGERS), st.integers())
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | integers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


deep_json = st.builds(_nested, st.integers(100, 30_000), st.sampled_from(["list", "object"]))
# A JSON number no float or 64-bit integer holds, written out in full.
huge_number = st.builds(lambda n, e: f"{n}{'0' * e}", st.integers(1, 9), st.integers(19, 5_000))


def _dumps(value: Any, ascii_only: bool) -> str:
    # ensure_ascii writes a lone surrogate as its \\ud800 escape, as a hostile client would.
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)


# ── dev chat ──────────────────────────────────────────────────────────────────────────────

dev_message = st.fixed_dictionaries(
    {"user_id": st.one_of(st.just("fuzz-user"), texts, json_values)},
    optional={
        "text": st.one_of(texts, json_values),
        "chat_id": st.one_of(st.none(), texts, json_values),
        "message_id": st.one_of(texts, json_values),
    },
)


@st.composite
def dev_bodies(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(deep_json).encode()
    if choice == 1:
        return f'{{"user_id": "u", "text": "1", "message_id": {draw(huge_number)}}}'.encode()
    if choice == 2:
        return draw(st.binary(max_size=200))
    if choice == 3:
        return _dumps(draw(json_values), ascii_only=True).encode()
    text = _dumps(draw(dev_message), ascii_only=choice == 4)
    return text.encode("utf-8", "surrogatepass")


# ── Official Account and WeCom app: XML ───────────────────────────────────────────────────


def _xml_safe(text: str) -> str:
    # What XML 1.0 can carry at all; anything else is a different test (invalid bytes).
    return "".join(
        c
        for c in text
        if c in "\t\n\r" or ("\x20" <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c > "\uffff"
    )


xml_text = st.one_of(texts, integers.map(str)).map(_xml_safe)
MSG_TYPES = ["text", "event", "image", "voice", "video", "shortvideo", "location", "link", "file"]
EVENTS = ["subscribe", "unsubscribe", "CLICK", "VIEW", "SCAN", "enter_agent", "LOCATION"]


@st.composite
def xml_fields(draw: st.DrawFn, to: str, agent: bool) -> dict[str, str]:
    fields = {
        "ToUserName": to,
        # legal01 is a cadre (content/cadres.toml): on WeCom its #12 commands reach the cases.
        "FromUserName": draw(st.one_of(st.sampled_from(["o_fuzz", "legal01"]), xml_text)),
        "CreateTime": draw(st.one_of(st.sampled_from(EDGE_INTEGERS).map(str), xml_text)),
        "MsgType": draw(st.one_of(st.sampled_from(MSG_TYPES), xml_text)),
        "Content": draw(xml_text),
        "MsgId": draw(st.one_of(integers.map(str), xml_text)),
        "Event": draw(st.one_of(st.sampled_from(EVENTS), xml_text)),
        "EventKey": draw(xml_text),
        "Recognition": draw(xml_text),
    }
    if agent:
        fields["AgentID"] = draw(st.one_of(integers.map(str), xml_text))
    # Leave out some fields, as a malformed or unusual message would.
    dropped = draw(st.sets(st.sampled_from(sorted(fields)), max_size=4))
    return {k: v for k, v in fields.items() if k not in dropped or k == "ToUserName"}


def _xml(fields: dict[str, str]) -> str:
    return str(xmltodict.unparse({"xml": fields}, full_document=False))


# Each strategy gives what to send; it is signed (with fresh randomness) when sent.
mp_requests = st.one_of(
    st.tuples(
        st.sampled_from(["plain", "aes", "compatible"]),
        xml_fields(wechat.MP_APP_ID, agent=False).map(_xml),
    ),
    st.tuples(st.just("raw bytes"), st.binary(max_size=300)),
)
work_requests = xml_fields(wechat.WORK_CORP_ID, agent=True).map(_xml)


def _sign_mp(request: tuple[str, str | bytes]) -> wechat.Signed:
    mode, xml = request
    if isinstance(xml, bytes):
        return wechat.Signed(wechat.mp_plain("/wechat/mp", "").path, xml)
    if mode == "plain":
        return wechat.mp_plain("/wechat/mp", xml)
    return wechat.mp_aes("/wechat/mp", xml, compatible=mode == "compatible")


# ── WeCom intelligent robot: JSON inside the encryption ───────────────────────────────────

aibot_message = st.fixed_dictionaries(
    {
        "msgid": st.one_of(st.just("m-fuzz"), texts, json_values),
        "from": st.one_of(
            st.fixed_dictionaries({"userid": st.one_of(st.just("rider"), texts, json_values)}),
            json_values,
        ),
        "msgtype": st.one_of(
            st.sampled_from(["text", "mixed", "event", "stream", "image", "voice", "file"]),
            json_values,
        ),
    },
    optional={
        "aibotid": st.one_of(st.just("AIBOTID"), json_values),
        "chattype": st.one_of(st.sampled_from(["group", "single"]), json_values),
        "chatid": json_values,
        "response_url": json_values,
        "text": st.one_of(st.fixed_dictionaries({"content": texts}), json_values),
        "event": st.one_of(st.fixed_dictionaries({"eventtype": texts}), json_values),
        "mixed": st.one_of(
            st.fixed_dictionaries(
                {
                    "msg_item": st.one_of(
                        st.lists(
                            st.one_of(
                                st.fixed_dictionaries(
                                    {
                                        "msgtype": st.just("text"),
                                        "text": st.one_of(
                                            st.fixed_dictionaries({"content": texts}), json_values
                                        ),
                                    }
                                ),
                                json_values,
                            ),
                            max_size=3,
                        ),
                        json_values,
                    )
                }
            ),
            json_values,
        ),
    },
)


aibot_requests = st.one_of(
    deep_json,
    json_values.map(lambda v: _dumps(v, ascii_only=True)),
    aibot_message.map(lambda v: _dumps(v, ascii_only=True)),
)


# ── the tests ─────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def live(db_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[LiveServer]:
    caplog.set_level(logging.WARNING)
    with serve(make_config(db_url)) as server:
        yield server
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, "logged at ERROR: " + "; ".join(
        f"{r.name}: {r.getMessage()}" for r in errors[:5]
    )


def _still_answers(live: LiveServer) -> None:
    body = json.dumps({"user_id": "after-fuzz", "text": "你好"}).encode()
    answer = live.post("/dev/chat", body)
    assert answer.status == 200
    assert "请回复数字选择服务" in json.loads(answer.body)["replies"][0]["text"]


def _fuzz(live: LiveServer, requests: st.SearchStrategy[Any], send: Callable[[Any], int]) -> None:
    @FUZZ
    @given(request=requests)
    def check(request: Any) -> None:
        status = send(request)
        assert status < 500, f"answered {status}"

    check()
    _still_answers(live)


def _signed(live: LiveServer, sign: Callable[[Any], wechat.Signed]) -> Callable[[Any], int]:
    def send(request: Any) -> int:
        signed = sign(request)
        return live.post(signed.path, signed.body).status

    return send


def test_dev_chat_survives_any_body(live: LiveServer) -> None:
    _fuzz(live, dev_bodies(), lambda body: live.post("/dev/chat", body).status)


def test_official_account_survives_any_message(live: LiveServer) -> None:
    _fuzz(live, mp_requests, _signed(live, _sign_mp))


def test_wecom_app_survives_any_message(live: LiveServer) -> None:
    _fuzz(
        live, work_requests, _signed(live, lambda xml: wechat.work_encrypted("/wechat/work", xml))
    )


def test_aibot_survives_any_callback(live: LiveServer) -> None:
    _fuzz(
        live,
        aibot_requests,
        _signed(live, lambda inner: wechat.aibot_encrypted("/wechat/aibot", inner)),
    )
