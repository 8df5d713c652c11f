"""Settings from the environment (and `.env`), validated once per process."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVER_QUEUES = ("default", "ingest", "ml", "notify", "orders", "events")
EDGE_QUEUE = "edge"
ALL_QUEUES = (*SERVER_QUEUES, EDGE_QUEUE)

HEADLESS_SHELL = Path("/usr/lib/chromium/chromium-headless-shell")  # Debian's chromium-headless-shell


def default_chromium() -> str:
    """The headless shell when installed (about half the memory of the full browser), else /usr/bin/chromium."""
    return str(HEADLESS_SHELL) if HEADLESS_SHELL.exists() else "/usr/bin/chromium"


class GenericSource(BaseModel):
    """A storefront scraped by CSS selectors on its search page and/or JSON-LD `Product` on item pages."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    search_path: str = Field("/search?q={query}", description="Search page; {query} is URL-encoded in.")
    card_selector: str = Field(description="One product card on the search page.")
    link_selector: str = Field("a[href]", description="Inside a card: the link to the product page.")
    title_selector: str | None = None
    price_selector: str | None = None
    brand_selector: str | None = None
    size_selector: str | None = None
    condition_selector: str | None = None
    image_selector: str | None = Field("img", description="Inside a card: images (src / data-src).")
    sold_selector: str | None = Field(None, description="Inside a card: present when the product is sold.")
    next_selector: str | None = Field("a[rel=next]", description="The search page's link to its next page.")
    currency: str | None = Field(None, description="Currency when the page's price text carries none (ISO 4217).")
    json_ld: bool = Field(True, description="Open each product page and read its JSON-LD Product.")
    id_pattern: str = Field(r"/([^/?#]+)/?(?:[?#].*)?$", description="Regex on the product URL; group 1 = listing id.")


class EdgeSettings(BaseSettings):
    """What every process reads, edge workers included (which hold no database credentials)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    redis_url: str = Field(
        description="Redis for the broker and job records (redis://, rediss:// or unix://).",
    )
    redis_namespace: str = Field("backroom", pattern=r"^[a-zA-Z][a-zA-Z0-9_-]*$")
    job_retention_days: float = Field(7.0, gt=0, description="How long finished job records are kept.")
    dlq_retention_days: float = Field(
        30.0, gt=0, description="How long dead letters are kept before Redis maintenance trims them."
    )
    default_max_retries: int = Field(3, ge=0, le=50)
    default_max_backoff_ms: int = Field(300_000, ge=1_000, le=86_400_000)
    default_time_limit_ms: int = Field(600_000, ge=1_000)
    worker_heartbeat_timeout_ms: int = Field(
        20_000, ge=1_000, description="A worker silent this long is dead: its in-flight jobs run again elsewhere."
    )
    poison_threshold: int = Field(
        3, ge=1, le=100, description="Worker deaths during one job before it is dead-lettered."
    )
    worker_shutdown_timeout_s: int = Field(
        30, ge=1, description="On SIGTERM, how long running jobs may take to finish."
    )
    redis_sentinels: str | None = Field(
        None, description="host:port,host:port of Redis Sentinels (instead of REDIS_URL's host)."
    )
    redis_sentinel_master: str = Field("mymaster", description="The Sentinel-managed primary's name.")
    redis_wait_replicas: int = Field(
        0,
        ge=0,
        le=10,
        description="Replicas that must confirm each enqueue and each batch of job outcomes (Redis WAIT); 0: none.",
    )
    redis_wait_timeout_ms: int = Field(
        500, ge=1, le=60_000, description="How long an enqueue or outcome batch waits for REDIS_WAIT_REPLICAS replicas."
    )
    sentry_dsn: str | None = Field(None, description="Report errors to Sentry when set.")
    sentry_environment: str = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_public_url: str | None = Field(None, description="Base URL printed in status_url; defaults to relative.")
    metrics_port: int = Field(9191, ge=0, le=65535, description="Worker Prometheus port; 0 turns it off.")
    edge_node_id: str | None = Field(None, description="Name of this edge node (defaults to the host name).")
    edge_outbox_path: Path = Field(
        Path("var/edge-outbox.sqlite3"),
        description="The edge node's durable outbox (results kept while Redis is unreachable).",
    )
    edge_outbox_flush_s: float = Field(5.0, gt=0, le=3600, description="How often the edge worker retries its outbox.")
    edge_heartbeat_s: float = Field(
        5.0, gt=0, le=300, description="How often an edge worker writes its registry entry."
    )
    edge_node_ttl_s: int = Field(30, ge=2, le=3600, description="An edge node silent this long is no longer live.")
    # --- scraping on the edge (edge/browser.py, edge/sources/) ---
    edge_chromium_path: str = Field(
        default_factory=default_chromium,
        description="The system Chromium Playwright drives (unset: the headless shell when installed, else chromium).",
    )
    edge_pages_in_flight: int = Field(2, ge=1, le=16, description="Browser pages open at once per edge worker process.")
    edge_contexts_in_flight: int = Field(
        1,
        ge=1,
        le=16,
        description="Jobs holding a browser context at once per edge worker (each costs a renderer process).",
    )
    edge_page_timeout_ms: int = Field(15_000, ge=1_000, le=120_000, description="Per page load / source request.")
    vinted_base_url: str = Field("https://www.vinted.fr", description="The Vinted site whose session is bootstrapped.")
    vinted_api_base_url: str | None = Field(None, description="Vinted's catalogue API; unset = api. + the site host.")
    vinted_item_details: bool = Field(False, description="Always open item pages (else only when fields are missing).")
    grailed_base_url: str = Field(
        "https://www.grailed.com", description="Grailed's site (its /shop page holds the key)."
    )
    grailed_algolia_url: str | None = Field(None, description="Algolia host; unset = https://<app id>-dsn.algolia.net.")
    grailed_algolia_index: str = Field("Listing_production", description="The Algolia index searched for Grailed.")
    edge_sources: dict[str, GenericSource] = Field(
        default_factory=dict,
        description="JSON {name: {base_url, card_selector, ...}}: generic storefronts (CSS/JSON-LD).",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class Settings(EdgeSettings):
    """Server processes (web, worker, scheduler, CLI): everything, plus the database."""

    database_url: str = Field(description="PostgreSQL 15+ with pgvector >= 0.5.")
    scheduler_catchup_minutes: int = Field(
        60, ge=0, le=2880, description="On start or takeover, fire ticks missed this recently (older ones are counted)."
    )
    scheduler_leader_ttl_ms: int = Field(
        10_000, ge=1_000, le=300_000, description="The scheduler leader lock's lifetime; renewed every third of it."
    )
    scheduler_settings_ttl_s: float = Field(
        10.0, ge=0, le=300, description="How long the scheduler caches the admin's schedule settings (cadence, on/off)."
    )
    ops_alert_channel: Literal["push", "email", "chat"] = Field(
        "push",
        description="Where ops alerts go (edge node silent, dead letters grew, LLM cost cap): "
        "push/email admin, chat ops.",
    )
    # --- orders and notifications (providers unset = not configured) ---
    hold_minutes: float = Field(15.0, gt=0, le=1440, description="How long a paid order is held before release.")
    admin_email: str | None = Field(None, description="Where admin emails go (recipient `admin` on email).")
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = Field(None, description="whsec_... of the webhook endpoint.")
    stripe_api_base: str | None = Field(None, description="Stripe API base (a local fake); unset = Stripe's.")
    printify_token: SecretStr | None = None
    printify_shop_id: str | None = None
    printify_api_base: str = "https://api.printify.com"
    printify_webhook_secret: SecretStr | None = None
    resend_api_key: SecretStr | None = None
    resend_api_base: str = "https://api.resend.com"
    resend_from: str | None = Field(None, description="Sender, e.g. `Shop <orders@your-domain>` (verified at Resend).")
    pushover_token: SecretStr | None = None
    pushover_user: str | None = Field(None, description="The admin's Pushover user (or group) key.")
    pushover_api_base: str = "https://api.pushover.net"
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = Field(None, description="The ops chat (recipient `ops` on chat).")
    telegram_api_base: str = "https://api.telegram.org"
    notify_fallback: Literal["none", "console"] = Field(
        "none", description="`console`: channels without a provider go to the outbox file (`make run`)."
    )
    notify_outbox_path: str = "var/outbox.jsonl"
    resend_rate_per_s: float = Field(2.0, gt=0)
    pushover_rate_per_s: float = Field(2.0, gt=0)
    telegram_rate_per_s: float = Field(1.0, gt=0)
    printify_rate_per_min: int = Field(600, gt=0)
    refund_window_days: float = Field(
        30.0, ge=0, le=3650, description="A refund asked for this soon after payment is approved without an admin."
    )
    printify_catalog_rate_per_min: float = Field(
        2.0, gt=0, le=600, description="Requests a minute the nightly catalog sync may make to Printify."
    )
    reconcile_days: int = Field(7, ge=1, le=90, description="How far back the nightly reconciliation looks.")
    reconcile_max_pages: int = Field(
        50, ge=1, le=1000, description="At most this many pages of Stripe sessions and of Printify orders a run."
    )
    printify_poll_after_minutes: float = Field(
        30.0, gt=0, le=10080, description="A released Printify order with no webhook for this long is polled."
    )
    stripe_rate_per_s: float = Field(25.0, gt=0)
    provider_timeout_s: float = Field(15.0, gt=0, le=120, description="How long a provider may take to answer.")
    model_dir: Path | None = Field(
        None, description="An exported CLIP model directory; unset = the bundled tiny test model (not semantic)."
    )
    model_precision: Literal["fp32", "int8"] = Field("fp32", description="int8 needs a model exported with --int8.")
    ml_threads: int = Field(0, ge=0, le=256, description="ONNX Runtime threads per worker process (0 = every core).")
    embed_batch_size: int = Field(32, ge=1, le=512, description="Items per embed_items message in a sync.")
    # --- enrichment (enrich_items): zero-shot stylist slot + style tags, optional LLM description ---
    enrich_vocabulary_path: Path | None = Field(
        None, description="A JSON enrichment vocabulary (slots, style tags, occasions); unset = the built-in one."
    )
    enrich_batch_size: int = Field(32, ge=1, le=512, description="Items per enrich_items message in a sweep.")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible API base with /v1; unset = no LLM stage.")
    llm_api_key: SecretStr | None = None
    llm_model: str = Field("gpt-4o-mini", min_length=1, description="The chat model asked for descriptions.")
    llm_response_format: Literal["json_schema", "json_object"] = Field(
        "json_schema", description="json_schema (strict structured outputs) or json_object for servers without it."
    )
    llm_max_tokens: int = Field(500, ge=50, le=16_384, description="Completion tokens per call (a cut-off fails).")
    llm_timeout_s: float = Field(60.0, gt=0, le=600, description="How long one chat completion may take.")
    llm_concurrency: int = Field(4, ge=1, le=64, description="LLM calls in flight per enrich_items message.")
    llm_prompt_price_per_1k: float = Field(0.00015, ge=0, description="USD per 1,000 prompt tokens (cost log, cap).")
    llm_completion_price_per_1k: float = Field(0.0006, ge=0, description="USD per 1,000 completion tokens.")
    llm_daily_cost_cap: float | None = Field(
        5.0, ge=0, description="USD per UTC day; once reached no more LLM calls and one admin alert. Empty = no cap."
    )
    media_dir: Path = Field(Path("var/media"), description="The local content-addressed media store.")
    # --- the S3-compatible media store (when MEDIA_S3_BUCKET is set; workers on several machines share it) ---
    media_s3_bucket: str | None = Field(None, description="Store media in this S3 bucket instead of MEDIA_DIR.")
    media_s3_endpoint_url: str | None = Field(
        None, description="An S3-compatible endpoint (MinIO, R2...); unset = AWS."
    )
    media_s3_region: str | None = None
    media_s3_access_key_id: str | None = Field(None, description="Unset = boto3's default credential chain.")
    media_s3_secret_access_key: SecretStr | None = None
    media_s3_prefix: str = Field("", pattern=r"^([A-Za-z0-9._-]+/)*$", description="Key prefix, e.g. `media/`.")
    # --- ingest: margin scoring of scraped listings and image rehosting ---
    margin_default_multiplier: float = Field(2.0, gt=0, le=100, description="Resale estimate = price x this.")
    margin_brand_multipliers: dict[str, PositiveFloat] = Field(
        default_factory=dict, description='Per-brand multipliers as JSON, e.g. {"Rick Owens": 3.0}.'
    )
    margin_fee_percent: float = Field(12.0, ge=0, lt=100, description="Selling fees, percent of the resale price.")
    margin_shipping_cents: int = Field(1_500, ge=0, description="Shipping we pay per item (minor units).")
    margin_green_cents: int = Field(5_000, description="A margin at least this large is green (minor units).")
    auto_approve_green: bool = Field(False, description="New green items go live without review.")
    rehost_max_images: int = Field(8, ge=1, le=50, description="Images rehosted per item (the first N).")
    rehost_max_bytes: int = Field(10_000_000, ge=1_000, description="Largest image download accepted.")
    rehost_max_pixels: int = Field(40_000_000, ge=10_000, description="Largest decoded image (width x height).")
    rehost_max_edge_px: int = Field(2048, ge=64, le=10_000, description="Rehosted images are scaled to fit this.")
    rehost_timeout_s: float = Field(20.0, gt=0, le=300, description="How long one image download may take.")
    rehost_allowed_hosts: str = Field(
        "", description="Comma-separated host names (and their subdomains) images may come from; empty = any."
    )
    search_ef_search: int = Field(
        200,
        ge=10,
        le=1000,
        description="HNSW candidates per similarity query (recall vs latency; see bench/search.py).",
    )
    # --- curated collections (generate_collections) ---
    collections_per_surface: int = Field(6, ge=1, le=50, description="Collections per surface per generation.")
    collection_size: int = Field(12, ge=1, le=100, description="Items picked per collection (at most).")
    collection_min_size: int = Field(4, ge=1, le=100, description="A collection with fewer picks is left out.")
    collection_brand_cap: int = Field(2, ge=1, le=100, description="Items of one brand per collection (at most).")
    collection_duplicate_cosine: float = Field(
        0.95, ge=-1, le=1, description="Two items more similar than this (cosine) are near-duplicates: one is kept."
    )
    collection_relevance_weight: float = Field(
        0.7, ge=0, le=1, description="MMR weight: 1 = nearest to the seed only, lower = more varied picks."
    )
    collection_candidates: int = Field(200, ge=10, le=1000, description="Nearest items considered per collection.")
    collection_valid_hours: float = Field(48.0, gt=0, le=8760, description="A generation is served this long at most.")
    collection_keep_generations: int = Field(
        3, ge=1, le=100, description="Generations kept per surface (older deleted)."
    )
    collection_cluster_sample: int = Field(
        5000, ge=10, le=200_000, description="Items k-means samples when no seed exists."
    )
    # --- the admin page ---
    admin_session_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="Keys the /admin/ sign-in form's CSRF token; unset = random per process (a sign-in form shown by "
        "another process, or before a restart, must be reloaded).",
    )
    admin_session_hours: float = Field(8.0, gt=0, le=720, description="How long an /admin/ sign-in lasts at most.")
    admin_session_idle_minutes: float = Field(
        30.0, gt=0, le=43200, description="An /admin/ sign-in unused this long ends (idle timeout)."
    )
    # --- the API's own protection ---
    token_rate_limit_per_min: int = Field(
        1200,
        ge=0,
        le=1_000_000,
        description="Requests a minute per API token unless the token sets its own (0 = unlimited); shared by every "
        "web process through Redis. Over it: 429 with Retry-After.",
    )
    metrics_access: Literal["token", "private", "open"] = Field(
        "token",
        description="Who may read the API's /metrics: a bearer token with admin:read, clients on a private "
        "or loopback address, or anyone.",
    )
    payload_webhook_secret: SecretStr | None = Field(
        None, description="Shared secret of the Payload CMS hooks (X-Internal-Webhook-Secret, or X-Signature HMAC)."
    )
    # --- storefront events (actors/events.py): Standard Webhooks deliveries to storefront endpoints ---
    events_allow_addresses: Literal["public", "loopback", "private"] = Field(
        "public",
        description="Where deliveries may connect: public addresses only; `loopback` adds 127.0.0.1 and ::1 "
        "(dev, tests); `private` adds private networks too.",
    )
    events_timeout_s: float = Field(10.0, gt=0, le=60, description="How long one delivery may take, answer included.")
    events_min_backoff_ms: int = Field(10_000, ge=10, le=3_600_000, description="First retry delay of a delivery.")
    events_max_backoff_ms: int = Field(21_600_000, ge=10, le=86_400_000, description="Longest retry delay (6 h).")
    events_max_failures: int = Field(
        25,
        ge=0,
        le=100,
        description="Failed attempts before a delivery is dead-lettered (25 x backoff = about 3 days).",
    )
    events_disable_after_hours: float = Field(
        24.0, gt=0, le=720, description="An endpoint failing this long without one success is disabled (admin alerted)."
    )
    events_relay_batch: int = Field(500, ge=1, le=10_000, description="Events one relay message turns into deliveries.")
    # --- prune: is each sourced listing still for sale? (actors/prune.py) ---
    prune_edge_sources: str = Field(
        "vinted", pattern=r"^[a-z0-9_,-]*$", description="Sources that block datacenter IPs: checked on the edge."
    )
    prune_host_rate_per_s: float = Field(0.5, gt=0, le=100, description="Listing checks per second per host, at most.")
    prune_host_concurrency: int = Field(2, ge=1, le=64, description="Listing checks in flight per host, at most.")
    prune_jitter: float = Field(0.3, ge=0, le=5, description="Random extra gap between checks of a host (fraction).")
    prune_timeout_s: float = Field(20.0, gt=0, le=120, description="How long a listing page may take to answer.")
    prune_recheck_minutes: float = Field(
        60.0, gt=0, description="After an unknown outcome (blocked, timeout) check again this much later, doubling."
    )
    prune_max_rechecks: int = Field(3, ge=0, le=20, description="Unknowns in a row rechecked before the next prune.")
    prune_batch_size: int = Field(500, ge=1, le=10_000, description="Item ids read per page by the prune fan-out.")
    # --- retention (purge_expired) ---
    notification_retention_days: float = Field(90.0, gt=0, description="Finished notification logs are kept this long.")
    webhook_retention_days: float = Field(30.0, ge=3, description="Processed webhook events are kept this long.")
    listing_check_retention_days: float = Field(
        90.0, gt=0, description="Listing check evidence is kept this long (the check that changed an item, for good)."
    )
    media_orphan_grace_hours: float = Field(
        24.0, gt=0, description="Media files no item or seed references are deleted once this old."
    )

    @field_validator("database_url")
    @classmethod
    def _pg_scheme(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("model_dir", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return value or None  # MODEL_DIR= (empty) means the bundled tiny test model

    @field_validator(
        "media_s3_bucket",
        "media_s3_endpoint_url",
        "media_s3_region",
        "media_s3_access_key_id",
        "media_s3_secret_access_key",
        mode="before",
    )
    @classmethod
    def _s3_unset_when_empty(cls, value: object) -> object:
        return value or None  # MEDIA_S3_BUCKET= (empty, as in .env.example) means the local directory

    @field_validator("enrich_vocabulary_path", "llm_base_url", "llm_api_key", "llm_daily_cost_cap", mode="before")
    @classmethod
    def _enrich_unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value  # LLM_BASE_URL= means no LLM stage; a cap of 0 stays 0 (no calls)


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "settings"
    if first["type"] == "missing":
        return f"backroom: missing setting {name} (see .env.example)"
    return f"backroom: invalid setting {name}: {first['msg']}"


S = TypeVar("S", bound=EdgeSettings)


def _load(cls: type[S]) -> S:
    try:
        return cls()
    except ValidationError as error:
        print(_one_line(error), file=sys.stderr)
        raise SystemExit(2) from None


@functools.cache
def get_settings() -> Settings:
    """Read the server settings once; a bad variable stops the process with one line naming it."""
    return _load(Settings)


@functools.cache
def get_edge_settings() -> EdgeSettings:
    """Read the edge settings once (no DATABASE_URL needed or read)."""
    return _load(EdgeSettings)


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
    get_edge_settings.cache_clear()
