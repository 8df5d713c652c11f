"""Is a sourced listing still for sale? Pure rules from the evidence of one check.

Only positive evidence changes an item: the source's own removal page on an HTTP 404
(-> `archived`), or the source's sold markers (-> `sold`). A block (403/429), a challenge
page, a timeout, a 5xx, a redirect elsewhere or markers that disagree say nothing about the
listing: `unknown`, the item stays as it is and is checked again later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

Outcome = Literal["available", "sold", "archived", "unknown"]
OUTCOMES: tuple[Outcome, ...] = ("available", "sold", "archived", "unknown")
# outcomes that move an available item to this status
ITEM_STATUS_OF: dict[str, str] = {"sold": "sold", "archived": "archived"}

# what a marker says; `gone` only counts on a 404, the others only on a 200
Kind = Literal["sold", "gone", "deleted", "listed", "doubt", "challenge"]

# anti-bot pages of any source (Cloudflare, Datadome, Vinted's own): never evidence about the listing.
# Not `challenge-platform` alone: Cloudflare injects that script into ordinary pages too.
CHALLENGE_MARKERS: dict[str, str] = {
    "challenge:just-a-moment": "<title>Just a moment...</title>",
    "challenge:cf-chl": "cf-chl-",
    "challenge:cf-attention": "Attention Required! | Cloudflare",
    "challenge:cf-browser-verification": "cf-browser-verification",
    "challenge:verifying-human": "Verifying you are human",
    "challenge:rate-limited": "You are rate limited",
    "challenge:captcha-delivery": "captcha-delivery.com",
}
# the removal page each source serves with its 404 (any other 404 is no evidence)
REMOVAL_MARKERS: dict[str, dict[str, str]] = {
    "vinted": {"removed:item-not-found": 'data-testid="item-not-found"'},
    "grailed": {"removed:listing-not-found": "Listing not found"},
}
DEFAULT_REMOVAL_MARKERS: dict[str, str] = {"removed:product-not-found": "Product not found"}

_VINTED_SOLD_TESTID = 'data-testid="item-status--sold"'
_IS_CLOSED = re.compile(r'\\?"is_closed\\?"\s*:\s*(true|false)')
_CLOSING_ACTION = re.compile(r'\\?"item_closing_action\\?"\s*:\s*\\?"([a-z_]+)')
_LD_JSON = re.compile(r'<script[^>]*type=["\']application/ld\+json["\'][^>]*>(.*?)</script>', re.S | re.I)
_SOLD_AVAILABILITY = {"SoldOut", "OutOfStock", "Discontinued"}
_LISTED_AVAILABILITY = {"InStock", "LimitedAvailability", "OnlineOnly", "InStoreOnly"}

_KIND_PREFIX: dict[str, Kind] = {
    "sold": "sold",
    "removed": "gone",
    "deleted": "deleted",
    "listed": "listed",
    "doubt": "doubt",
    "challenge": "challenge",
}


@dataclass(frozen=True)
class Evidence:
    """What one check saw: HTTP status (None: no answer), final URL, body, or the error instead."""

    source: str
    url: str | None = None
    http_status: int | None = None
    final_url: str | None = None
    body: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of a check, the markers it rests on, and why, in a few words."""

    outcome: Outcome
    markers: tuple[str, ...] = field(default_factory=tuple)
    reason: str = ""


def kind_of(marker: str) -> Kind:
    """What a marker name (`kind:detail`) says."""
    return _KIND_PREFIX.get(marker.split(":", 1)[0], "doubt")


def find_markers(evidence: Evidence, removal: dict[str, str] | None = None) -> tuple[str, ...]:
    """Every marker the evidence carries, sorted (challenge, removal page, sold/listed flags, redirects)."""
    body = evidence.body or ""
    found = {name for name, text in CHALLENGE_MARKERS.items() if text in body}
    removal = removal if removal is not None else REMOVAL_MARKERS.get(evidence.source, DEFAULT_REMOVAL_MARKERS)
    found |= {name for name, text in removal.items() if text in body}
    found |= set(_json_ld_markers(body))
    if evidence.source == "vinted":
        found |= set(_vinted_markers(body))
    if evidence.source == "grailed":
        found |= set(_grailed_markers(body))
    if _left_host(evidence.url, evidence.final_url):
        found.add("doubt:redirected-off-host")
    return tuple(sorted(found))


def decide(http_status: int | None, markers: Iterable[str], error: str | None = None) -> Decision:
    """The outcome that this status and these markers prove (anything short of proof is `unknown`)."""
    markers = tuple(sorted(set(markers)))
    kinds = {kind_of(m) for m in markers}
    if error or http_status is None:
        return Decision("unknown", markers, f"no answer: {error or 'no status'}")
    if "challenge" in kinds:
        return Decision("unknown", markers, "challenge page")
    if http_status == 404:
        if "gone" in kinds:
            return Decision("archived", markers, "the source's removal page")
        return Decision("unknown", markers, "a 404 without the source's removal page")
    if http_status != 200:
        return Decision("unknown", markers, f"HTTP {http_status}")
    if "doubt" in kinds:
        return Decision("unknown", markers, "doubtful page")
    positive = kinds & {"sold", "deleted"}
    if positive and "listed" in kinds:
        return Decision("unknown", markers, "markers disagree")
    if "sold" in positive:
        return Decision("sold", markers, "sold markers")
    if "deleted" in positive:
        return Decision("archived", markers, "deleted flag")
    if "listed" in kinds:
        return Decision("available", markers, "still listed")
    return Decision("unknown", markers, "no marker either way")


def judge(evidence: Evidence, removal: dict[str, str] | None = None) -> Decision:
    """Find the markers in `evidence` and decide."""
    return decide(evidence.http_status, find_markers(evidence, removal), evidence.error)


def confirm(outcome: str, http_status: int | None, markers: Sequence[str], error: str | None) -> Decision:
    """Accept a reported outcome only when its status and markers prove it; otherwise `unknown`."""
    decision = decide(http_status, markers, error)
    if outcome == decision.outcome:
        return decision
    return Decision("unknown", decision.markers, f"reported {outcome!r} is not supported by the evidence")


def _json_ld_markers(body: str) -> Iterable[str]:
    for block in _LD_JSON.findall(body):
        try:
            data = json.loads(block)
        except ValueError:
            yield "doubt:malformed-json-ld"
            continue
        for availability in _availabilities(data):
            name = availability.rsplit("/", 1)[-1]
            if name in _SOLD_AVAILABILITY:
                yield f"sold:json-ld-{name}"
            elif name in _LISTED_AVAILABILITY:
                yield f"listed:json-ld-{name}"


def _availabilities(node: Any) -> Iterable[str]:
    """`offers.availability` of every Product in a JSON-LD document (graphs and lists included)."""
    if isinstance(node, list):
        for child in node:
            yield from _availabilities(child)
    elif isinstance(node, dict):
        if node.get("@type") == "Product" or "Product" in (node.get("@type") or []):
            offers = node.get("offers")
            for offer in offers if isinstance(offers, list) else [offers]:
                if isinstance(offer, dict) and isinstance(offer.get("availability"), str):
                    yield offer["availability"]
        yield from _availabilities(node.get("@graph"))


def _vinted_markers(body: str) -> Iterable[str]:
    if _VINTED_SOLD_TESTID in body:
        yield "sold:vinted-item-status--sold"
    closed = set(_IS_CLOSED.findall(body))
    if "true" in closed:
        yield "sold:vinted-is_closed"
    if "false" in closed:
        yield "listed:vinted-is_closed-false"
    for action in set(_CLOSING_ACTION.findall(body)):
        # closed for another reason (hidden, ended by the seller): not a sale
        yield "sold:vinted-closing-action-sold" if action == "sold" else f"doubt:vinted-closing-action-{action}"


def _grailed_markers(body: str) -> Iterable[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return
    listing = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listing, dict):
        return
    seen = {name: listing.get(name) is True for name in ("sold", "deleted", "hidden")}
    if seen["sold"]:
        yield "sold:grailed-sold"
    if seen["deleted"]:
        yield "deleted:grailed-deleted"
    if seen["hidden"]:
        yield "doubt:grailed-hidden"
    if listing.get("sold") is False and not seen["deleted"] and not seen["hidden"]:
        yield "listed:grailed-sold-false"


def _left_host(url: str | None, final_url: str | None) -> bool:
    if not url or not final_url:
        return False
    return urlsplit(url).netloc.lower() != urlsplit(final_url).netloc.lower()


def host_of(url: str) -> str:
    """The `host[:port]` politeness is counted by (lower case)."""
    return urlsplit(url).netloc.lower()


@dataclass(frozen=True)
class CheckPlan:
    """Where a listing is checked (`server` or `edge`) and which URL is fetched."""

    where: Literal["server", "edge"]
    url: str
    host: str


def plan_check(source: str, source_url: str, source_listing_id: str, edge_sources: Iterable[str]) -> CheckPlan:
    """Grailed through its listing API, sources that block datacenter IPs on the edge, others by their page."""
    parts = urlsplit(source_url)
    if source in set(edge_sources):
        return CheckPlan("edge", source_url, parts.netloc.lower())
    if source == "grailed":
        return CheckPlan(
            "server", f"{parts.scheme}://{parts.netloc}/api/listings/{source_listing_id}", parts.netloc.lower()
        )
    return CheckPlan("server", source_url, parts.netloc.lower())


def recheck_delay_ms(unknown_streak: int, *, base_ms: int, max_rechecks: int, jitter: float) -> int | None:
    """When to check again after `unknown_streak` unknowns in a row (doubling, jittered); None: at the next prune."""
    if unknown_streak < 1 or unknown_streak > max_rechecks:
        return None
    return int(base_ms * 2 ** (unknown_streak - 1) * (1 + jitter))


def pace(
    hosts: Sequence[str], *, interval_ms: float, jitters: Sequence[float], start_ms: dict[str, float] | None = None
) -> tuple[list[int], dict[str, float]]:
    """A send delay per listing so that each host sees one check per `interval_ms` plus its jitter.

    `jitters[i]` in [0, j] stretches the gap before listing i; `start_ms` carries the next
    free time of each host across batches. Returns the delays and the updated next free times.
    """
    following = dict(start_ms or {})
    delays: list[int] = []
    for host, jitter in zip(hosts, jitters, strict=True):
        at = following.get(host, 0.0)
        delays.append(int(at))
        following[host] = at + interval_ms * (1 + jitter)
    return delays, following
