"""Structured logging with secrets and phone numbers masked before anything is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

# What aiohttp raises for a request it cannot read: the client's fault, not ours.
_CLIENT_ERRORS = (HttpProcessingError, RequestPayloadError)

# Mainland mobile numbers: 11 digits starting with 1[3-9]; keep the first 3 and last 4.
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
# Query-string and key/value secrets as they appear in URLs and dicts.
_SECRET = re.compile(
    r"(?i)((?:access_token|secret|corpsecret|appsecret|token|key|encoding_aes_key|password)"
    r"[\"']?\s*[=:]\s*[\"']?)([^&\s\"',}]+)"
)


def mask_phone(text: str) -> str:
    return _PHONE.sub(r"\1****\2", text)


def mask(text: str) -> str:
    return _SECRET.sub(r"\1***", mask_phone(text))


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return mask(json.dumps(payload, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _RESERVED and not k.startswith("_")
        )
        line = super().format(record)
        return mask(f"{line} {extras}" if extras else line)


class ClientErrorFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a bad chunk size, a 20 KB header, a body that is
    not the gzip it claims to be) at ERROR with a traceback, although the fault is the
    client's and the answer is a 400. Such records become one WARNING line naming the fault:
    anyone can send them, and a traceback at ERROR should mean a fault of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, _CLIENT_ERRORS):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg}: malformed request ({type(exc).__name__}: %s)"
            record.args = (*(record.args or ()), " ".join(str(exc).split())[:200])
            record.exc_info = record.exc_text = None
        return True


def quiet_malformed_requests() -> None:
    """Install :class:`ClientErrorFilter` on aiohttp's server logger (once)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientErrorFilter) for f in server.filters):
        server.addFilter(ClientErrorFilter())


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print every callback URL, and those carry signatures.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("jieba").setLevel(logging.WARNING)
