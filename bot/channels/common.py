"""What every callback endpoint checks before it trusts a request."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any
from xml.etree import ElementTree

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError

from bot.messages import Incoming, Reply

_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class BadRequest(Exception):
    """The request is malformed; answered with 400 and logged without its body."""


def wechat_signature(*parts: str) -> str:
    """SHA1 of the sorted, concatenated parts — WeChat's callback signature."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(given: str, *parts: str) -> bool:
    # Constant-time compare so the signature cannot be guessed byte by byte.
    return hmac.compare_digest(given.encode(), wechat_signature(*parts).encode())


def require_params(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(n, "") for n in names]
    if not all(values):
        raise web.HTTPForbidden(text="missing signature parameters")
    return values


def check_timestamp(timestamp: str, window: int, now: float | None = None) -> None:
    try:
        ts = int(timestamp)
    except ValueError:
        raise web.HTTPForbidden(text="bad timestamp") from None
    if abs((now if now is not None else time.time()) - ts) > window:
        raise web.HTTPForbidden(text="stale timestamp")


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    # WeChat, WeCom and the gateways send plain bodies; a compressed one is refused before
    # anything inflates it, and the connection closed rather than kept for the next request.
    if request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower() != "identity":
        refused = web.HTTPUnsupportedMediaType(text="compressed bodies are not accepted")
        refused.force_close()
        raise refused
    # aiohttp stops reading past the application's client_max_size (the same limit) with a
    # 413 of its own; the check below covers a channel given a smaller limit.
    try:
        body = await request.read()
    except (RequestPayloadError, ConnectionResetError) as exc:
        # A body cut short (the client hung up) or not what its headers say: the client's
        # fault, not a database outage or a fault of ours.
        raise web.HTTPBadRequest(text=f"body could not be read: {type(exc).__name__}") from None
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


def vet_xml(data: bytes | str) -> str:
    """Check a WeChat XML document before anything parses it. WeChat never sends a DTD, so a
    document with one (entity bombs, external entities) is refused outright: with no DTD there
    is no entity for the parser to expand or fetch."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    if _DTD.search(text):
        raise BadRequest("XML with a DTD or entity declaration")
    return text


def parse_xml(data: bytes | str) -> dict[str, str]:
    """Vet and parse a WeChat XML document into a flat dict of the texts of its ``<xml>``
    root's children (stripped, as wechatpy has them). WeChat's messages are flat; the few
    nested parts (ScanCodeInfo …) are not read. ElementTree's C parser is used: a callback
    is parsed once or twice, and xmltodict cost a tenth of all the service's work."""
    text = vet_xml(data)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise BadRequest(f"malformed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise BadRequest("XML root is not <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


# The envelope of an encrypted callback as WeChat writes it: <xml>… <Encrypt>base64</Encrypt>
# …</xml>, the base64 text optionally in CDATA.
_ENVELOPE = re.compile(
    rb"\s*(?:<\?xml[^>]*\?>\s*)?<xml>.*?<Encrypt>(?:<!\[CDATA\[)?([A-Za-z0-9+/=]+)"
    rb"(?:\]\]>)?</Encrypt>.*</xml>\s*",
    re.DOTALL,
)


def encrypted_part(data: bytes) -> str:
    """The ``Encrypt`` text of an encrypted callback's envelope ("" when there is none).

    Only this element of the envelope is used, and the message signature checked next covers
    it, so the envelope is not parsed when it has WeChat's own shape (a parse costs as much as
    a tenth of a callback); anything else is vetted and parsed in full."""
    # The shape leaves no room for a DTD (it would come before <xml>).
    found = _ENVELOPE.fullmatch(data)
    if found is not None:
        return found.group(1).decode("ascii")
    return parse_xml(data).get("Encrypt", "")


def load_json(data: bytes | str) -> Any:
    """Parse a JSON body; BadRequest for anything that is not JSON a client could mean: bytes
    that are not UTF-8, a syntax error, nesting deeper than the parser recurses, a number of
    more than 4,300 digits."""
    try:
        return json.loads(data)
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {type(exc).__name__}") from None


# What neither a database nor a reply can carry: controls other than tab, newline and
# carriage return (PostgreSQL refuses NUL), and a lone surrogate (JSON's "\ud800": half of an
# emoji cut off by a client), which is not a character at all.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """The text as sent, with a lone surrogate replaced by U+FFFD and controls dropped."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: "\ufffd" if m.group() >= "\ud800" else "", text)


def json_text(value: Any) -> str:
    """A JSON field that should hold text: a string cleaned, a number written out, anything
    else (an object, a list, null) empty — so a field of the wrong type reads as missing."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def json_object(value: Any) -> dict[str, Any]:
    """A JSON field that should hold an object; anything else reads as an empty one."""
    return value if isinstance(value, dict) else {}


def checked(incoming: Incoming) -> Incoming:
    """The message, or BadRequest when an identifier is longer than its column holds (no
    platform sends such; accepted, it would fail in the database instead)."""
    problem = incoming.oversized()
    if problem is not None:
        raise BadRequest(problem)
    return incoming


def cdata_safe(text: str) -> str:
    """``]]>`` would close the CDATA section wechatpy wraps text in: split it in two."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def join_replies(replies: list[Reply]) -> str:
    # A passive reply carries one message; several replies go in one text.
    return "\n\n".join(r.text for r in replies if r.text)
