"""How `gateway serve` logs: one JSON object per line (or text for a person), with the request id.

The configuration is a `logging.config.dictConfig` dictionary handed to
uvicorn, so every worker process logs alike, uvicorn's own access and error
lines included. The JSON lines are python-json-logger's: it already handles
extra fields, tracebacks and values JSON cannot encode, which a hand-written
formatter would have to relearn.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS

from gateway import requestid

__all__ = ["LogFormat", "RequestIdFilter", "logging_config"]

LogFormat = Literal["json", "text"]


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request it was logged in, `outside` any request."""

    def __init__(self, outside: str | None = None) -> None:
        super().__init__()
        self._outside = outside

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = requestid.current() or self._outside
        return True


_FORMATTERS: dict[LogFormat, dict[str, Any]] = {
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
        "timestamp": "time",
        "rename_fields": {"levelname": "level", "name": "logger"},
        # uvicorn adds an ANSI-coloured copy of its message, noise in a log store.
        "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
    },
    "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
}


def logging_config(log_format: LogFormat = "json", level: str = "INFO") -> dict[str, Any]:
    """Everything (root, and uvicorn's loggers, which otherwise keep their own) to one handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter, "outside": None if log_format == "json" else "-"}
        },
        "formatters": {"chosen": _FORMATTERS[log_format]},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "chosen",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            # httpx logs every upstream request with its full URL, whose query string can
            # carry the text of a caller's filter; the metrics and traces count those requests.
            "httpx": {"level": "WARNING"},
        },
    }
