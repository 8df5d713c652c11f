"""Actor names and queues that cross the edge/server boundary (wire protocol: never rename).

Edge workers send results to server actors by name (they do not import server code), and
the server sends work to edge actors by name; a test checks these against declared actors.
"""

from __future__ import annotations

from types import MappingProxyType

INGEST_QUEUE = "ingest"
EDGE_QUEUE = "edge"
RESULTS_QUEUE = "results"  # in the edge namespace: what edge nodes deliver to (the edge gateway consumes it)

# the edge gateway's actor: checks, validates and forwards every edge result to its server actor
ACCEPT_EDGE_RESULT = "accept_edge_result"

# server actors that edge workers deliver to
INGEST_LISTINGS = "ingest_listings"
RECORD_LISTING_CHECK = "record_listing_check"

# edge actors that the server sends work to
SCRAPE_SOURCE = "scrape_source"
CHECK_LISTING_ON_EDGE = "check_listing_on_edge"

# actor name -> queue name
QUEUES: MappingProxyType[str, str] = MappingProxyType(
    {
        INGEST_LISTINGS: INGEST_QUEUE,
        RECORD_LISTING_CHECK: INGEST_QUEUE,
        SCRAPE_SOURCE: EDGE_QUEUE,
        CHECK_LISTING_ON_EDGE: EDGE_QUEUE,
    }
)

SERVER_ACTORS = frozenset(name for name, queue in QUEUES.items() if queue != EDGE_QUEUE)
EDGE_ACTORS = frozenset(name for name, queue in QUEUES.items() if queue == EDGE_QUEUE)


def queue_of(actor_name: str) -> str:
    """The queue a cross-boundary actor consumes (KeyError for names not in the contract)."""
    return QUEUES[actor_name]
