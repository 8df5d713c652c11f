"""BackroomBroker calls only the middleware implementing a hook, in Dramatiq's order and with its error rules."""

from __future__ import annotations

import logging
import os

import pytest
from dramatiq.middleware import Middleware, SkipMessage

from broker.redis import BackroomBroker


class Recorder(Middleware):
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def before_enqueue(self, broker, message, delay) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"before:{self.name}")

    def after_enqueue(self, broker, message, delay) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"after:{self.name}")


class LaterRecorder(Recorder):
    """A second recorder of a type of its own (Dramatiq warns when two middleware share a type)."""


class Inert(Middleware):
    """Implements no hook (a bare Middleware() would share its type with every other middleware)."""


class Failing(Middleware):
    def before_enqueue(self, broker, message, delay) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("hook failed")

    def before_process_message(self, broker, message) -> None:  # type: ignore[no-untyped-def]
        raise SkipMessage()


@pytest.fixture()
def broker():  # type: ignore[no-untyped-def]
    made = BackroomBroker(url=os.environ["REDIS_URL"], namespace="emit-test", job_retention_s=60, middleware=[])
    yield made
    made.close()


def test_hooks_run_in_order_and_a_middleware_added_later_is_called(broker) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    broker.add_middleware(Recorder("a", calls))
    broker.add_middleware(Inert())  # implements nothing: skipped
    broker.emit_before("enqueue", None, None)
    broker.emit_after("enqueue", None, None)
    assert calls == ["before:a", "after:a"]
    calls.clear()
    broker.add_middleware(LaterRecorder("b", calls))  # after the lists were cached
    broker.emit_before("enqueue", None, None)
    broker.emit_after("enqueue", None, None)
    assert calls == ["before:a", "before:b", "after:b", "after:a"]
    assert broker._listeners("before_enqueue") == [m for m in broker.middleware if isinstance(m, Recorder)]


def test_a_failing_hook_is_logged_and_the_others_still_run(broker, caplog) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    broker.add_middleware(Failing())
    broker.add_middleware(Recorder("a", calls))
    with caplog.at_level(logging.CRITICAL):
        broker.emit_before("enqueue", None, None)
    assert calls == ["before:a"]
    assert "Unexpected failure in before_enqueue" in caplog.text


def test_skip_message_still_propagates(broker) -> None:  # type: ignore[no-untyped-def]
    broker.add_middleware(Failing())
    with pytest.raises(SkipMessage):
        broker.emit_before("process_message", None)


def test_a_removed_middleware_is_no_longer_called(broker) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    gone = Recorder("gone", calls)
    broker.add_middleware(gone)
    broker.emit_before("enqueue", None, None)
    broker.middleware.remove(gone)  # as tests do; then a new one makes the list as long as before
    broker.add_middleware(Recorder("new", calls))
    broker.emit_before("enqueue", None, None)
    assert calls == ["before:gone", "before:new"]
