"""Structured logs: JSON lines carrying job_id / request_id from context; never secrets."""
from __future__ import annotations

import logging
import re
import sys

import structlog

_SECRET_IN_URL = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")


def _scrub(_: object, __: str, event: dict) -> dict:
    for key, value in list(event.items()):
        if isinstance(value, str) and "://" in value:
            event[key] = _SECRET_IN_URL.sub(r"\1***\3", value)
    return event


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route stdlib and structlog logging through one JSON (or console) renderer."""
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _scrub,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
