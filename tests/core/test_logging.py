"""Structured JSON logs."""

from __future__ import annotations

import json
import logging

from reelscale.core.logging import JsonFormatter, bind_request_id, reset_request_id


def test_json_logs_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "reelscale.test", logging.INFO, __file__, 1, "hello %s", ("you",), None
    )
    record.title_id = "t-1"
    token = bind_request_id("req-42")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        reset_request_id(token)
    assert line["msg"] == "hello you"
    assert line["request_id"] == "req-42"
    assert line["title_id"] == "t-1"
    assert line["level"] == "info"
