"""Logs never carry a phone number, a token or a secret in clear."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import JsonFormatter, mask, mask_phone


def test_phone_numbers_are_masked() -> None:
    assert mask_phone("电话13812345678，备用 15900001111") == "电话138****5678，备用 159****1111"
    assert mask_phone("订单号 2026112212345678901") == "订单号 2026112212345678901"


def test_tokens_and_secrets_are_masked() -> None:
    line = "GET /cgi-bin/message/send?access_token=ABC.def-123&x=1 secret=hunter2"
    masked = mask(line)
    assert "ABC.def-123" not in masked and "hunter2" not in masked
    assert "access_token=***" in masked


def test_json_log_lines_are_masked_including_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("worker 13912345678 wrote", extra={"url": "https://x/?key=robot-key-1"})
    finally:
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["msg"] == "worker 139****5678 wrote"
    assert "robot-key-1" not in record["url"]
