"""Structured logs: JSON lines carrying job_id / request_id from context; never secrets."""

from __future__ import annotations

import logging
import re
import sys

import structlog
from structlog.typing import EventDict, Processor

_SECRET_IN_URL = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
_DISCARDED_RESULT = re.compile(r"Actor '[^']*' returned a value that is not None, and you haven't added the Results")


def _scrub(_: object, __: str, event: EventDict) -> EventDict:
    for key, value in list(event.items()):
        if isinstance(value, str) and "://" in value:
            event[key] = _SECRET_IN_URL.sub(r"\1***\3", value)
    return event


class HideMessageArguments(logging.Filter):
    """Dramatiq logs messages as `actor(args, kwargs)`; log `actor[job id]` instead (arguments may hold secrets)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(hasattr(a, "actor_name") for a in record.args):
            record.args = tuple(_job_label(a) if hasattr(a, "actor_name") else a for a in record.args)
        return True


class DropDiscardedResultWarning(logging.Filter):
    """Dramatiq warns whenever an actor returns a value without its Results middleware; here an
    actor's return value is meant for its job record (a small result summary), so the warning,
    one per job, is only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Dramatiq formats the actor's name into the text itself (`"..." % name`), so match the message
        return not (record.name.startswith("dramatiq.worker") and _DISCARDED_RESULT.match(record.getMessage()))


def _job_label(message: object) -> str:
    return f"{getattr(message, 'actor_name', '?')}[{getattr(message, 'message_id', '?')}]"


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route stdlib and structlog logging through one JSON (or console) renderer."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # no local variables in tracebacks: they would print actors' arguments
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[Processor] = [
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
    handler.addFilter(HideMessageArguments())
    handler.addFilter(DropDiscardedResultWarning())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
