"""One Playwright Chromium per edge worker process: a context per job, a bounded number of pages.

The browser is opened lazily on the worker's event loop (the AsyncIO middleware's thread)
the first time a job needs it, reused by every later job, and closed by `BrowserMiddleware`
when the worker shuts down - never at import. Each job gets a fresh context (its own
cookies), with images, fonts and media aborted by a route; pages in flight across all jobs
of the process are bounded (EDGE_PAGES_IN_FLIGHT), and so are contexts (EDGE_CONTEXTS_IN_FLIGHT):
Chromium gives each context a renderer process of its own, the dearest part of the tree.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dramatiq.middleware import Middleware

log = logging.getLogger("backroom.edge.browser")

BLOCKED_RESOURCES = frozenset({"image", "font", "media"})
# Chromium keeps only the LAST --enable-features / --disable-features, so Playwright's own lists
# (its chromiumSwitches) are repeated here; tests/edge/test_browser.py fails when a Playwright
# upgrade adds a feature these lists drop.
PLAYWRIGHT_ENABLED = ("CDPScreenshotNewSurface", "SkipListAccountsWithoutGaiaCookies")
PLAYWRIGHT_DISABLED = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
)
# Full Chromium (new headless) preloads the omnibox popups as WebUI: one renderer per context, ~60 MB, never
# shown. (chromium-headless-shell has no such UI; the flags are harmless there.)
NO_TOP_CHROME_UI = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup", "PreloadTopChromeWebUI")
# Fewer, smaller Chromium processes for a 4 GB Pi (bench/scrape.py measures the tree): the GPU and network
# services inside the browser process; no site isolation, one process per site and a process limit of one,
# so a job's pages share its context's one renderer (Chromium never shares a renderer across contexts, so
# there is one per job in flight); the contexts hold only anonymous marketplace sessions. No zygote: renderers
# are started directly instead of forked from two idle zygote processes (~60 MB summed RSS less); Chromium
# allows that only without its sandbox, which Playwright always turns off (see Browser.no_sandbox).
LAUNCH_ARGS = (
    "--no-zygote",
    "--disable-gpu",
    "--in-process-gpu",
    "--disable-site-isolation-trials",
    "--process-per-site",
    "--renderer-process-limit=1",
    "--enable-features=" + ",".join(("NetworkServiceInProcess2", *PLAYWRIGHT_ENABLED)),
    "--disable-features=" + ",".join((*PLAYWRIGHT_DISABLED, *NO_TOP_CHROME_UI)),
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--mute-audio",
)
# The Playwright driver (node) reads NODE_OPTIONS: a 1 MB young generation and a 64 MB old generation (its
# live heap is ~25-30 MB: 24 MB runs out) keep it at ~135-140 MB instead of peaking at 150-200 MB in
# bench/scrape.py. Were it ever to run out, the driver dies, the jobs in flight fail and are retried, and the
# next job relaunches the browser (Browser._ensure).
DRIVER_NODE_OPTIONS = "--max-semi-space-size=1 --max-old-space-size=64"
VIEWPORT = {"width": 1280, "height": 900}
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"


class Browser:
    """The process's Chromium, opened on first use; `context()` per job, `page()` per page."""

    def __init__(
        self, executable_path: str, pages_in_flight: int, timeout_ms: int, contexts_in_flight: int | None = None
    ) -> None:
        self.executable_path = executable_path
        self.pages_in_flight = pages_in_flight
        self.contexts_in_flight = contexts_in_flight  # None: as many as jobs run (the worker's threads)
        self.timeout_ms = timeout_ms
        # Chromium's sandbox refuses root. NB Playwright adds --no-sandbox itself unless launch() gets
        # chromium_sandbox=True (it never does here), so Chromium runs without its sandbox for any user.
        self.no_sandbox = os.geteuid() == 0
        self._playwright: Any = None
        self._browser: Any = None
        self._lock: asyncio.Lock | None = None
        self._slots: asyncio.Condition | None = None
        self._contexts: asyncio.Semaphore | None = None
        self._idle: dict[Any, list[Any]] = {}  # context -> its open pages nobody uses right now
        self._open = 0  # pages open (busy or idle) across the process: never more than pages_in_flight
        self.launches = 0

    async def _ensure(self) -> Any:
        """Launch Chromium once (on the calling loop), relaunching if it crashed or was closed."""
        if self._lock is None:
            self._lock = asyncio.Lock()
            self._slots = asyncio.Condition()
            self._contexts = asyncio.Semaphore(self.contexts_in_flight or 1 << 30)
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            await self._shutdown()
            from playwright.async_api import async_playwright

            self._playwright = await async_playwright().start()
            args = [*LAUNCH_ARGS, *(["--no-sandbox"] if self.no_sandbox else [])]
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.executable_path, headless=True, args=args
            )
            self.launches += 1
            log.info("chromium launched", extra={"executable": self.executable_path, "version": self._browser.version})
            return self._browser

    @asynccontextmanager
    async def context(self) -> AsyncIterator[Any]:
        """A fresh browser context for one job (own cookies), heavy resources blocked; closed after.

        At most EDGE_CONTEXTS_IN_FLIGHT at once (a job waits here for its turn): Chromium gives every
        context a renderer process of its own (~110 MB RSS, ~35 MB PSS), whatever the pages bound.
        """
        browser = await self._ensure()
        assert self._contexts is not None
        async with self._contexts:
            context = await browser.new_context(
                user_agent=USER_AGENT, service_workers="block", locale="en-GB", viewport=dict(VIEWPORT)
            )
            self._idle[context] = []
            try:
                context.set_default_timeout(self.timeout_ms)
                context.set_default_navigation_timeout(self.timeout_ms)
                await context.route("**/*", _block_heavy)
                yield context
            finally:
                await self._forget(context)
                await context.close()

    @asynccontextmanager
    async def page(self, context: Any) -> AsyncIterator[Any]:
        """A page in `context` (one it used before when free), within EDGE_PAGES_IN_FLIGHT open pages.

        Reusing a context's pages saves starting a renderer per page (2-3x faster per page here); a
        context short of pages closes another context's idle one rather than exceed the bound.
        """
        page = await self._take(context)
        healthy = False
        try:
            yield page
            healthy = True
        finally:
            await self._give_back(context, page, healthy)

    async def _take(self, context: Any) -> Any:
        assert self._slots is not None, "open a context first"
        async with self._slots:
            while True:
                if self._idle.get(context):
                    return self._idle[context].pop()
                if self._open < self.pages_in_flight:
                    self._open += 1
                    break
                victim = next((pages.pop() for pages in self._idle.values() if pages), None)
                if victim is not None:  # another job's idle page makes way (same count, no wait)
                    await _close_quietly(victim)
                    break
                await self._slots.wait()
        try:
            return await context.new_page()
        except BaseException:
            await self._release(1)
            raise

    async def _give_back(self, context: Any, page: Any, healthy: bool) -> None:
        assert self._slots is not None
        if healthy and not page.is_closed() and context in self._idle:
            async with self._slots:
                self._idle[context].append(page)
                self._slots.notify_all()
            return
        await _close_quietly(page)
        await self._release(1)

    async def _forget(self, context: Any) -> None:
        """Drop a closing context's idle pages from the count (closing the context closes them)."""
        pages = self._idle.pop(context, [])
        await self._release(len(pages))

    async def _release(self, count: int) -> None:
        if count and self._slots is not None:
            async with self._slots:
                self._open -= count
                self._slots.notify_all()

    async def close(self) -> None:
        """Close Chromium and the Playwright driver (worker shutdown)."""
        if self._lock is None:
            await self._shutdown()
            return
        async with self._lock:
            await self._shutdown()

    async def _shutdown(self) -> None:
        browser, playwright, self._browser, self._playwright = self._browser, self._playwright, None, None
        try:
            if browser is not None:
                await browser.close()
        finally:
            if playwright is not None:
                await playwright.stop()


async def _close_quietly(page: Any) -> None:
    """Close a page; one that already went with its browser or context is fine."""
    try:
        await page.close()
    except Exception:  # noqa: BLE001 - the page is gone either way; the count is what matters
        log.debug("page already closed")


async def _block_heavy(route: Any) -> None:
    """Abort images, fonts and media (bandwidth and memory on a Pi); let everything else through."""
    if route.request.resource_type in BLOCKED_RESOURCES:
        await route.abort()
    else:
        await route.continue_()


_browser: Browser | None = None


def get_browser() -> Browser:
    """This process's Browser, built from the edge settings on first call (Chromium starts on first use)."""
    global _browser
    if _browser is None:
        from config.settings import get_edge_settings

        settings = get_edge_settings()
        _browser = Browser(
            settings.edge_chromium_path,
            settings.edge_pages_in_flight,
            settings.edge_page_timeout_ms,
            settings.edge_contexts_in_flight,
        )
    return _browser


class BrowserMiddleware(Middleware):
    """Tunes the driver's environment at boot; closes the process's browser when its worker shuts down.

    Add it after the AsyncIO middleware.
    """

    def after_process_boot(self, broker: Any) -> None:
        """A small young generation for the Playwright driver (at boot, before worker threads; NODE_OPTIONS wins)."""
        os.environ.setdefault("NODE_OPTIONS", DRIVER_NODE_OPTIONS)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Run `Browser.close()` on the event loop thread before that loop stops."""
        if _browser is None or _browser._browser is None:
            return
        from dramatiq.asyncio import get_event_loop_thread

        thread = get_event_loop_thread()
        if thread is None:
            return
        try:
            thread.run_coroutine(asyncio.wait_for(_browser.close(), timeout=10))
        except Exception:  # the process is exiting; a stuck browser dies with the driver
            log.exception("closing chromium failed")
