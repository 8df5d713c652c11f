"""Settings from the environment (and `.env`), validated once per process."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVER_QUEUES = ("default", "ingest", "ml", "notify", "orders")
EDGE_QUEUE = "edge"
ALL_QUEUES = (*SERVER_QUEUES, EDGE_QUEUE)


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
    poison_threshold: int = Field(3, ge=1, le=100, description="Worker deaths during one job before it is dead-lettered.")
    worker_shutdown_timeout_s: int = Field(30, ge=1, description="On SIGTERM, how long running jobs may take to finish.")
    redis_sentinels: str | None = Field(None, description="host:port,host:port of Redis Sentinels (instead of REDIS_URL's host).")
    redis_sentinel_master: str = Field("mymaster", description="The Sentinel-managed primary's name.")
    sentry_dsn: str | None = Field(None, description="Report errors to Sentry when set.")
    sentry_environment: str = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_public_url: str | None = Field(None, description="Base URL printed in status_url; defaults to relative.")
    metrics_port: int = Field(9191, ge=0, le=65535, description="Worker Prometheus port; 0 turns it off.")
    edge_node_id: str | None = Field(None, description="Name of this edge node (defaults to the host name).")

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
    stripe_rate_per_s: float = Field(25.0, gt=0)
    provider_timeout_s: float = Field(15.0, gt=0, le=120, description="How long a provider may take to answer.")
    model_dir: Path | None = Field(
        None, description="An exported CLIP model directory; unset = the bundled tiny test model (not semantic)."
    )
    model_precision: Literal["fp32", "int8"] = Field("fp32", description="int8 needs a model exported with --int8.")
    ml_threads: int = Field(0, ge=0, le=256, description="ONNX Runtime threads per worker process (0 = every core).")
    embed_batch_size: int = Field(32, ge=1, le=512, description="Items per embed_items message in a sync.")
    media_dir: Path = Field(Path("var/media"), description="The local content-addressed media store.")
    search_ef_search: int = Field(
        200, ge=10, le=1000, description="HNSW candidates per similarity query (recall vs latency; see bench/search.py)."
    )
    # --- the admin page ---
    admin_session_secret: SecretStr | None = Field(
        None, min_length=32, description="Signs /admin/ session cookies; unset = random per process (sign-ins end on restart)."
    )
    admin_session_hours: float = Field(8.0, gt=0, le=720, description="How long an /admin/ sign-in lasts.")

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


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "settings"
    if first["type"] == "missing":
        return f"backroom: missing setting {name} (see .env.example)"
    return f"backroom: invalid setting {name}: {first['msg']}"


def _load(cls: type[EdgeSettings]) -> EdgeSettings:
    try:
        return cls()
    except ValidationError as error:
        print(_one_line(error), file=sys.stderr)
        raise SystemExit(2) from None


@functools.cache
def get_settings() -> Settings:
    """Read the server settings once; a bad variable stops the process with one line naming it."""
    return _load(Settings)  # type: ignore[return-value]


@functools.cache
def get_edge_settings() -> EdgeSettings:
    """Read the edge settings once (no DATABASE_URL needed or read)."""
    return _load(EdgeSettings)


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
    get_edge_settings.cache_clear()
