"""Log output: readable text by default, one JSON object per line on request."""

import json
import logging

import pytest

from infra.logs import setup_logging
from infra.settings import LogSettings

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_json_format_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(format="json", level="INFO"))
    logging.getLogger("alcance.test").info("batch %d: %d records", 3, 120)
    logging.getLogger("alcance.test").debug("not shown at INFO")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "batch 3: 120 records"
    assert entry["level"] == "INFO" and entry["logger"] == "alcance.test"
    assert entry["time"].endswith("+00:00")


def test_text_format_is_human_readable(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings())
    logging.getLogger("alcance.test").warning("source %s retrying", "cvf-lrs")
    err = capsys.readouterr().err
    assert "WARNING" in err and "alcance.test: source cvf-lrs retrying" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err)
