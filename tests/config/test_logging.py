"""Logs never carry actors' arguments (they may hold secrets)."""

from __future__ import annotations

import io
import logging

from dramatiq import Message
from dramatiq.broker import MessageProxy

from config.logging import configure_logging


def test_dramatiq_message_arguments_are_not_logged(monkeypatch) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    monkeypatch.setattr(handler, "stream", stream)
    message = MessageProxy(
        Message(
            queue_name="default",
            actor_name="charge_card",
            args=("4242",),
            kwargs={"api_key": "sk_live_secret"},
            options={},
        )
    )
    logging.getLogger("dramatiq.worker").error("Failed to process message %s with unhandled exception.", message)
    logging.getLogger("x").info("connect to %s", "redis://user:hunter2@host:6379/0")
    output = stream.getvalue()
    assert f"charge_card[{message.message_id}]" in output
    assert "sk_live_secret" not in output and "4242" not in output and "hunter2" not in output


def test_the_discarded_result_warning_is_dropped_and_other_warnings_kept(monkeypatch) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json")
    monkeypatch.setattr(logging.getLogger().handlers[0], "stream", stream)
    worker_log = logging.getLogger("dramatiq.worker.WorkerThread")
    # worded and formatted as Dramatiq's worker does it: the actor's name already in the text
    worker_log.warning(
        "Actor 'ping' returned a value that is not None, and you haven't added the Results middleware "
        "to the broker, so the value has been discarded."
    )
    worker_log.warning("Actor '%s' is slow", "ping")
    output = stream.getvalue()
    assert "Results middleware" not in output and "is slow" in output
