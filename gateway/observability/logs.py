"""How `gateway serve` logs: one JSON object per line (or text for a person), with the request id.

The configuration is a `logging.config.dictConfig` dictionary handed to
uvicorn, so every worker process logs alike, uvicorn's own access and error
lines included. The JSON lines are python-json-logger's: it already handles
extra fields, tracebacks and values JSON cannot encode, which a hand-written
formatter would have to relearn.

Nothing a caller or a provider sends as a value reaches a line: query strings are
redacted (a webhook's `?key=` is its secret, a GET's `variables` name tenants), and
GraphQL errors are logged by code, not by their messages (`schema/errors.py`).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS

from gateway.observability import requestid

__all__ = [
    "REDACTED",
    "LogFormat",
    "QueryStringRedaction",
    "RequestIdFilter",
    "SandboxRequestsAtDebug",
    "logging_config",
]

REDACTED = "[redacted]"
_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")

LogFormat = Literal["json", "text"]


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request it was logged in, `outside` any request."""

    def __init__(self, outside: str | None = None) -> None:
        super().__init__()
        self._outside = outside

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = requestid.current() or self._outside
        return True


def _redacted(target: str) -> str:
    """A request target with every value of its query string replaced; the names stay, and
    so does an `operationName` that is a GraphQL name, which says what ran without saying
    with what."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    parameters = []
    for parameter in query.split("&"):
        name, equals, value = parameter.partition("=")
        if not equals:
            parameters.append(REDACTED)
        elif name == "operationName" and _GRAPHQL_NAME.fullmatch(value):
            parameters.append(parameter)
        else:
            parameters.append(f"{name}={REDACTED}")
    return f"{path}?{'&'.join(parameters)}"


class QueryStringRedaction(logging.Filter):
    """uvicorn logs each request's target whole, query string included (the access line,
    and a websocket's line on `uvicorn.error`); any argument that is a path loses the
    values of its query string before a line is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _redacted(arg) if isinstance(arg, str) and arg.startswith("/") else arg
                for arg in record.args
            )
        return True


class SandboxRequestsAtDebug(logging.Filter):
    """The sandbox is served by the gateway's own server, so every upstream call of the demo
    was an access line at INFO: a person saw the gateway's traffic to itself rather than their
    own requests. Those lines are DEBUG, shown only when `--log-level debug` asks for them."""

    def __init__(self, level: str = "INFO") -> None:
        super().__init__()
        self._shown: bool = logging.getLevelNamesMapping()[level.upper()] <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) < 3:
            return True
        if not str(args[2]).startswith("/sandbox/"):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self._shown


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
            "request_id": {"()": RequestIdFilter, "outside": None if log_format == "json" else "-"},
            "query_strings": {"()": QueryStringRedaction},
            "sandbox_requests": {"()": SandboxRequestsAtDebug, "level": level},
        },
        "formatters": {"chosen": _FORMATTERS[log_format]},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "chosen",
                "filters": ["sandbox_requests", "request_id", "query_strings"],
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
