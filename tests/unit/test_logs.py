"""One log format for every process: ``SEISMO_LOG_FORMAT=text|json`` (seismo/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from seismo.logs import fields, kafka_logging, setup_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def test_json_lines_carry_the_extra_fields_of_the_record(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    logging.getLogger("seismo.runtime").warning("cannot decode %s", "message",
                                                extra=fields(step="normalize", partition=2, offset=41))
    doc = json.loads(stream.getvalue())
    assert doc["message"] == "cannot decode message"
    assert (doc["level"], doc["logger"]) == ("WARNING", "seismo.runtime")
    assert (doc["step"], doc["partition"], doc["offset"]) == ("normalize", 2, 41)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["ts"])


def test_text_lines_have_a_utc_time_with_its_zone_and_the_extra_fields(stream: io.StringIO) -> None:
    setup_logging("INFO", "text", stream)
    logging.getLogger("seismo.poll").info("page done", extra=fields(source="sentry", cursor="a b"))
    line = stream.getvalue().strip()
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO seismo\.poll: page done '
                        r'source=sentry cursor="a b"', line), line


def test_a_field_named_like_a_record_attribute_is_kept_not_refused(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    logging.getLogger("x").info("m", extra=fields(name="payments", args="x"))
    doc = json.loads(stream.getvalue())
    assert (doc["name_"], doc["args_"], doc["logger"]) == ("payments", "x", "x")


def test_the_json_formatter_writes_exceptions_and_odd_values_as_strings(stream: io.StringIO) -> None:
    setup_logging("DEBUG", "json", stream)
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("x").exception("failed", extra=fields(where=object))
    doc = json.loads(stream.getvalue())
    assert "ValueError: bad" in doc["exc"]
    assert doc["where"] == str(object)


def test_setup_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        setup_logging("INFO", "xml")  # type: ignore[arg-type]


def test_librdkafka_logs_reach_python_logging_through_the_config() -> None:
    config = kafka_logging({"bootstrap.servers": "127.0.0.1:1"})
    assert config["bootstrap.servers"] == "127.0.0.1:1"
    assert config["logger"] is logging.getLogger("seismo.kafka")


def test_a_client_built_with_it_logs_connection_failures_through_python_not_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from confluent_kafka import Producer

    producer = Producer(kafka_logging({"bootstrap.servers": "127.0.0.1:1", "client.id": "log-probe"}))
    deadline = time.monotonic() + 15
    with caplog.at_level(logging.DEBUG, logger="seismo.kafka"):
        while not caplog.records and time.monotonic() < deadline:
            producer.poll(0.2)
    assert caplog.records, "librdkafka logged nothing within 15 s"
    assert all(r.name == "seismo.kafka" for r in caplog.records)
    assert "%3|" not in capfd.readouterr().err


def test_a_quiet_setup_filters_its_own_output_but_never_raises_the_root_level(stream: io.StringIO) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    setup_logging("WARNING", "text", stream)
    assert root.level == logging.DEBUG
    logging.getLogger("x").info("hidden")
    logging.getLogger("x").warning("shown")
    assert [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()] == ["shown"]
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD", "text", stream)
