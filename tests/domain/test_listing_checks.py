"""Listing check rules: only positive evidence archives or sells an item; everything else is unknown."""

from __future__ import annotations

import json

import pytest

from domain.listing_checks import Evidence, confirm, decide, find_markers, judge, pace, plan_check, recheck_delay_ms

CHALLENGE = (
    "<html><head><title>Just a moment...</title></head><body><h1>Verifying you are human</h1>"
    '<script src="/cdn-cgi/challenge-platform/h/g/orchestrate"></script></body></html>'
)


def ld(availability: str) -> str:
    product = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "Jacket",
        "offers": {"@type": "Offer", "price": "120.00", "availability": f"https://schema.org/{availability}"},
    }
    return f'<script type="application/ld+json">{json.dumps(product)}</script>'


def vinted_page(*, sold: bool) -> str:
    status = '<div data-testid="item-status--sold">Sold</div>' if sold else ""
    closed = str(sold).lower()
    return (
        f'<html><body><h1>Jacket</h1>{status}<script>{{"item":{{"id":1,"is_closed":{closed}}}}}</script></body></html>'
    )


def grailed(**fields: object) -> str:
    return json.dumps({"data": {"id": 7, "title": "Boots", **fields}})


URL = "https://www.example.test/items/1"

CASES = [
    # (id, evidence, expected outcome)
    ("vinted sold testid + is_closed", Evidence("vinted", URL, 200, URL, vinted_page(sold=True)), "sold"),
    (
        "vinted flight data escaped is_closed",
        Evidence("vinted", URL, 200, URL, 'self.__next_f.push([1,"{\\"is_closed\\":true}"])'),
        "sold",
    ),
    ("vinted live", Evidence("vinted", URL, 200, URL, vinted_page(sold=False)), "available"),
    (
        "vinted removed page",
        Evidence("vinted", URL, 404, URL, '<div data-testid="item-not-found">The page does not exist</div>'),
        "archived",
    ),
    ("vinted bare 404", Evidence("vinted", URL, 404, URL, "<html>Not Found</html>"), "unknown"),
    (
        "vinted closed but not sold",
        Evidence("vinted", URL, 200, URL, '{"is_closed":true,"item_closing_action":"hidden"}'),
        "unknown",
    ),
    (
        "vinted sold and listed markers disagree",
        Evidence("vinted", URL, 200, URL, vinted_page(sold=True) + ld("InStock")),
        "unknown",
    ),
    ("challenge with 200", Evidence("vinted", URL, 200, URL, CHALLENGE), "unknown"),
    ("challenge with 403", Evidence("vinted", URL, 403, URL, CHALLENGE), "unknown"),
    (
        "challenge on a removed-looking 404",
        Evidence("vinted", URL, 404, URL, CHALLENGE + 'data-testid="item-not-found"'),
        "unknown",
    ),
    ("429", Evidence("grailed", URL, 429, URL, "You are rate limited"), "unknown"),
    ("503", Evidence("shop", URL, 503, URL, "<html>oops</html>"), "unknown"),
    ("timeout", Evidence("shop", URL, None, None, None, "timeout after 20 s"), "unknown"),
    ("grailed sold", Evidence("grailed", URL, 200, URL, grailed(sold=True, deleted=False)), "sold"),
    ("grailed listed", Evidence("grailed", URL, 200, URL, grailed(sold=False, deleted=False)), "available"),
    ("grailed deleted", Evidence("grailed", URL, 200, URL, grailed(sold=False, deleted=True)), "archived"),
    ("grailed hidden", Evidence("grailed", URL, 200, URL, grailed(sold=False, hidden=True)), "unknown"),
    ("grailed 404 not found", Evidence("grailed", URL, 404, URL, '{"error": "Listing not found"}'), "archived"),
    ("grailed 404 other", Evidence("grailed", URL, 404, URL, '{"error": "no route"}'), "unknown"),
    ("grailed html instead of json", Evidence("grailed", URL, 200, URL, "<html>hello</html>"), "unknown"),
    ("shop SoldOut", Evidence("shop", URL, 200, URL, ld("SoldOut")), "sold"),
    ("shop OutOfStock", Evidence("shop", URL, 200, URL, ld("OutOfStock")), "sold"),
    ("shop InStock", Evidence("shop", URL, 200, URL, ld("InStock")), "available"),
    ("shop removed", Evidence("shop", URL, 404, URL, "<h1>Product not found</h1>"), "archived"),
    ("shop 200 without markers", Evidence("shop", URL, 200, URL, "<html>a page</html>"), "unknown"),
    (
        "shop malformed json-ld",
        Evidence("shop", URL, 200, URL, '<script type="application/ld+json">{oops</script>' + ld("InStock")),
        "unknown",
    ),
    ("redirected to another host", Evidence("shop", URL, 200, "https://login.other.test/", ld("SoldOut")), "unknown"),
    (
        "json-ld graph",
        Evidence(
            "shop",
            URL,
            200,
            URL,
            '<script type="application/ld+json">{"@graph": [{"@type": "Product",'
            ' "offers": [{"availability": "SoldOut"}]}]}</script>',
        ),
        "sold",
    ),
    ("removed marker on a 200 is not removal", Evidence("shop", URL, 200, URL, "Product not found"), "unknown"),
]


@pytest.mark.parametrize(("evidence", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_judge(evidence: Evidence, expected: str) -> None:
    assert judge(evidence).outcome == expected


def test_markers_are_named_and_sorted() -> None:
    markers = find_markers(Evidence("vinted", URL, 200, URL, vinted_page(sold=True)))
    assert markers == ("sold:vinted-is_closed", "sold:vinted-item-status--sold")


@pytest.mark.parametrize(
    ("status", "markers", "error", "expected"),
    [
        (200, ["sold:vinted-is_closed"], None, "sold"),
        (200, ["sold:vinted-is_closed"], "timeout", "unknown"),
        (404, ["removed:item-not-found"], None, "archived"),
        (410, ["removed:item-not-found"], None, "unknown"),
        (200, ["removed:item-not-found"], None, "unknown"),
        (200, ["listed:json-ld-InStock"], None, "available"),
        (200, [], None, "unknown"),
        (None, ["sold:grailed-sold"], None, "unknown"),
        (200, ["sold:grailed-sold", "deleted:grailed-deleted"], None, "sold"),
    ],
)
def test_decide(status: int | None, markers: list[str], error: str | None, expected: str) -> None:
    assert decide(status, markers, error).outcome == expected


@pytest.mark.parametrize(
    ("reported", "status", "markers", "expected"),
    [
        ("sold", 200, ["sold:vinted-item-status--sold"], "sold"),
        ("archived", 404, ["removed:item-not-found"], "archived"),
        ("archived", 403, ["challenge:just-a-moment"], "unknown"),  # an edge bug cannot archive without proof
        ("sold", 200, [], "unknown"),
        ("available", 200, ["listed:json-ld-InStock"], "available"),
    ],
)
def test_confirm_accepts_only_what_the_evidence_proves(
    reported: str, status: int, markers: list[str], expected: str
) -> None:
    assert confirm(reported, status, markers, None).outcome == expected


@pytest.mark.parametrize(
    ("source", "url", "where", "fetched"),
    [
        ("vinted", "https://www.vinted.fr/items/12-jacket", "edge", "https://www.vinted.fr/items/12-jacket"),
        ("grailed", "https://www.grailed.com/listings/77-boots", "server", "https://www.grailed.com/api/listings/77"),
        ("shop", "http://127.0.0.1:9/products/p-3", "server", "http://127.0.0.1:9/products/p-3"),
    ],
)
def test_plan_check(source: str, url: str, where: str, fetched: str) -> None:
    listing_id = {"vinted": "12", "grailed": "77", "shop": "p-3"}[source]
    plan = plan_check(source, url, listing_id, ["vinted"])
    assert (plan.where, plan.url) == (where, fetched)


@pytest.mark.parametrize(("streak", "expected"), [(0, None), (1, 60_000), (2, 120_000), (3, 240_000), (4, None)])
def test_recheck_delay_doubles_then_waits_for_the_next_prune(streak: int, expected: int | None) -> None:
    assert recheck_delay_ms(streak, base_ms=60_000, max_rechecks=3, jitter=0.0) == expected


def test_pace_spaces_each_host_and_carries_over_batches() -> None:
    delays, following = pace(["a", "b", "a", "a", "b"], interval_ms=1000, jitters=[0, 0, 0.5, 0, 0])
    assert delays == [0, 0, 1000, 2500, 1000]
    more, _ = pace(["a", "b"], interval_ms=1000, jitters=[0, 0], start_ms=following)
    assert more == [3500, 2000]
