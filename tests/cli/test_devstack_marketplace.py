"""`make run` serves the local marketplace and points the sources at it, unless told otherwise."""

from __future__ import annotations

import json
import urllib.request

from cli.devstack import start_marketplace


def test_dev_stack_points_unset_sources_at_the_marketplace() -> None:
    env = {"DEV_MARKETPLACE_PORT": "0", "GRAILED_BASE_URL": "https://www.grailed.com"}
    market = start_marketplace(env)
    try:
        assert env["VINTED_BASE_URL"] == market.vinted_url and env["GRAILED_ALGOLIA_URL"] == market.algolia_url
        assert env["GRAILED_BASE_URL"] == "https://www.grailed.com"  # an exported setting wins
        shop = json.loads(env["EDGE_SOURCES"])["shop"]
        with urllib.request.urlopen(shop["base_url"] + "/search?q=hoodie", timeout=10) as response:
            assert shop["card_selector"].split(".")[-1] in response.read().decode()
    finally:
        market.stop()


def test_dev_marketplace_can_be_turned_off() -> None:
    env = {"DEV_MARKETPLACE": "0"}
    assert start_marketplace(env) is None and "VINTED_BASE_URL" not in env
