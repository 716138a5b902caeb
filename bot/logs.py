"""Structured logging with secrets and phone numbers masked before anything is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

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
