"""The edge browser's memory shape: one renderer per context, contexts bounded, Playwright's own flags kept."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import playwright
import pytest

from cli.stack import descendants
from edge.browser import LAUNCH_ARGS, Browser
from fakes.marketplace import Marketplace
from tests.edge.scrape_support import CHROMIUM, market, market_server  # noqa: F401
from tests.waiting import eventually


def _playwright_features(name: str) -> set[str]:
    """The feature names Playwright's driver puts in its own --enable/--disable-features (chromiumSwitches)."""
    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for path in [lib / "coreBundle.js", *lib.rglob("chromiumSwitches.js")]:
        if path.is_file() and (found := re.search(name + r" = (?:\(\) => )?\[(.*?)\]", path.read_text(), re.S)):
            body = "\n".join(line.split("//")[0] for line in found.group(1).splitlines())
            return {feature for feature in re.findall(r'"([^"]*)"', body) if feature}
    raise AssertionError(f"Playwright's {name} not found under {lib}")


def _our_features(switch: str) -> set[str]:
    values = [arg.split("=", 1)[1] for arg in LAUNCH_ARGS if arg.startswith(f"--{switch}=")]
    assert len(values) == 1, f"one --{switch} (Chromium keeps only the last)"
    return set(values[0].split(","))


def test_our_feature_lists_keep_playwrights_own() -> None:
    """Chromium keeps only the last --disable-features: ours must repeat every feature Playwright disables."""
    assert _playwright_features("disabledFeatures") - _our_features("disable-features") == set()
    assert _playwright_features("enabledFeatures") - _our_features("enable-features") == set()


def _chromium_processes() -> dict[int, str]:
    """Chromium processes anywhere below this test process: pid -> command line."""
    found = {}
    for child in descendants(os.getpid()):
        try:
            raw = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "chromium" in raw:
            found[child] = raw
    return found


async def _renderers(before: dict[int, str], want: int) -> int:
    """Poll (5 s) until this browser has `want` renderer processes; the count seen."""

    def count() -> int:
        return sum("--type=renderer" in raw for pid, raw in _chromium_processes().items() if pid not in before)

    await eventually(
        lambda: count() == want, 5, f"{want} renderer process(es)", detail=lambda: f"renderers now: {count()}"
    )
    return count()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_jobs_pages_share_one_renderer_and_contexts_wait_their_turn(market: Marketplace) -> None:  # noqa: F811
    before = _chromium_processes()
    browser = Browser(CHROMIUM, 3, 10_000, contexts_in_flight=1)
    events: list[str] = []

    async def second_job() -> None:
        async with browser.context():
            events.append("second job has a context")

    try:
        async with browser.context() as context:
            waiting = asyncio.create_task(second_job())
            async with browser.page(context) as a, browser.page(context) as b, browser.page(context) as c:
                await asyncio.gather(
                    *(
                        page.goto(f"{market.shop_url}/search?q={q}")
                        for page, q in ((a, "carhartt"), (b, "arc"), (c, ""))
                    )
                )
                # no omnibox WebUI renderer, no renderer per tab: three pages of one context, one process
                assert await _renderers(before, 1) == 1
            assert events == [], "a second context opened past EDGE_CONTEXTS_IN_FLIGHT=1"
            events.append("first job done")
        await asyncio.wait_for(waiting, 30)
    finally:
        await browser.close()
    assert events == ["first job done", "second job has a context"]
