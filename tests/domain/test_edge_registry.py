"""The edge registry's pure rules: node ids fit ACL patterns; process beats add up to nodes."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from domain.edge_registry import EdgeBeat, live_nodes, valid_node_id

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("node_id", "ok"),
    [
        ("pi-hall", True),
        ("pi.local", True),
        ("Pi_2", True),
        ("", False),
        ("-pi", False),
        ("pi*", False),
        ("pi?", False),
        ("pi[1]", False),
        ("pi hall", False),
        ("p" * 64, False),
    ],
)
def test_node_ids_never_carry_glob_characters(node_id: str, ok: bool) -> None:
    assert valid_node_id(node_id) is ok


def test_beats_add_up_per_node_and_the_newest_names_version_and_host() -> None:
    beats = [
        EdgeBeat(
            node_id="pi-a",
            pid=1,
            version="0.1",
            host="old",
            sources=["vinted"],
            done=3,
            failed=1,
            last_beat=T0 - timedelta(seconds=5),
        ),
        EdgeBeat(
            node_id="pi-a",
            pid=2,
            version="0.2",
            host="pi-a",
            sources=["grailed", "vinted"],
            browser=True,
            current_jobs=["j2"],
            done=4,
            blocked=2,
            last_beat=T0,
        ),
        EdgeBeat(node_id="pi-b", pid=9, version="0.2", host="pi-b", last_beat=T0),
    ]
    a, b = live_nodes(beats)
    assert (a.node_id, a.version, a.host, a.processes) == ("pi-a", "0.2", "pi-a", 2)
    assert (a.sources, a.browser, a.current_job, a.done, a.failed, a.blocked) == (
        ["grailed", "vinted"],
        True,
        "j2",
        7,
        1,
        2,
    )
    assert (b.node_id, b.browser, b.current_job, b.processes) == ("pi-b", False, None, 1)
