"""Build the broker every Backroom process uses (workers, API, scheduler, edge)."""

from __future__ import annotations

import os
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import AsyncIO, CurrentMessage, Retries
from periodiq import PeriodiqMiddleware

from broker.gate import Fence, StartGate
from broker.guard import QueueGuard
from broker.keys import Keys, edge_namespace
from broker.outage import die_with_parent
from broker.recovery import Recovery
from broker.redis import BackroomBroker
from broker.replication import replica_wait
from broker.tracking import JobTracking
from config.settings import EdgeSettings


def init_sentry(settings: EdgeSettings, *, web: bool = False) -> None:
    """Turn Sentry on (Dramatiq, plus Quart for the web) only when SENTRY_DSN is set."""
    if not settings.sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration

    integrations: list[Any] = [DramatiqIntegration()]
    if web:
        from sentry_sdk.integrations.quart import QuartIntegration

        integrations.append(QuartIntegration())
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        integrations=integrations,
        send_default_pii=False,
    )


def redis_client(settings: EdgeSettings) -> redis.Redis | None:
    """A client on the Sentinel-managed primary when REDIS_SENTINELS is set (else None: use REDIS_URL)."""
    if not settings.redis_sentinels:
        return None
    from redis.sentinel import Sentinel

    return _primary(Sentinel, settings)


def async_redis_client(settings: EdgeSettings) -> Any:
    """An asyncio Redis client on the same server as the broker (Sentinel-aware), for the web process.

    It never retries a command by itself: a retried pipeline of batched scripts could run one
    twice (see broker.batching), and a request fails fast into a 503 instead.
    """
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    if not settings.redis_sentinels:
        return aioredis.Redis.from_url(settings.redis_url, retry=Retry(NoBackoff(), 0))
    from redis.asyncio.sentinel import Sentinel

    return _primary(Sentinel, settings, retry=Retry(NoBackoff(), 0))


def _primary(sentinel_class: Any, settings: EdgeSettings, **kwargs: Any) -> Any:
    """The primary named REDIS_SENTINEL_MASTER, found through REDIS_SENTINELS (REDIS_URL gives password and db)."""
    hosts = [
        (host, int(port))
        for host, _, port in (item.strip().rpartition(":") for item in (settings.redis_sentinels or "").split(","))
    ]
    url = redis.connection.parse_url(settings.redis_url)
    return sentinel_class(hosts, socket_timeout=5).master_for(
        settings.redis_sentinel_master, password=url.get("password"), db=url.get("db", 0), **kwargs
    )


def build_broker(
    settings: EdgeSettings,
    *,
    metrics: bool = False,
    reap: bool = True,
    wake_queues: str = "*",
    broker_id_prefix: str = "",
    edge: bool = False,
) -> BackroomBroker:
    """A BackroomBroker with the queue guard, bounded retries, job tracking, AsyncIO and CurrentMessage.

    `edge` puts the broker on the edge namespace (broker.keys.edge_namespace): an edge worker
    passes it with reap=False (the edge gateway reaps dead edge workers), wake_queues="edge*"
    and a node-named broker_id_prefix, so it needs no Redis permission beyond its own
    queue's keys (see broker.acl); the edge gateway passes it with the reaper on.
    """
    init_sentry(settings)  # must precede the broker: it patches Broker.__init__
    retention_s = int(settings.job_retention_days * 86400)
    namespace = edge_namespace(settings.redis_namespace) if edge else settings.redis_namespace
    broker = BackroomBroker(
        url=settings.redis_url,
        client=redis_client(settings),
        namespace=namespace,
        job_retention_s=retention_s,
        wake_queues=wake_queues,
        broker_id_prefix=broker_id_prefix,
        replica_wait=replica_wait(settings.redis_wait_replicas, settings.redis_wait_timeout_ms),
        heartbeat_timeout=settings.worker_heartbeat_timeout_ms,
        dead_message_ttl=int(settings.dlq_retention_days * 86400 * 1000),
        maintenance_chance=0,  # Recovery reaps dead workers every few seconds instead of by chance
    )
    _bound_retries(broker, settings)
    # first: a refused message is seen by no other middleware (no job start, no retry);
    # an edge worker cannot write the server's refusal list, so its refusals are only logged
    edge_worker = edge and not reap
    broker.middleware.insert(0, QueueGuard(None if edge_worker else Keys(settings.redis_namespace).refused))
    # after_* hooks run in reverse order: tracking sits before Retries so it sees message.failed
    retries_at = next(i for i, m in enumerate(broker.middleware) if isinstance(m, Retries))
    broker.middleware.insert(retries_at, JobTracking(broker.jobs))
    fence = Fence(settings.worker_heartbeat_timeout_ms)
    recovery = Recovery(
        heartbeat_timeout_ms=settings.worker_heartbeat_timeout_ms,
        poison_threshold=settings.poison_threshold,
        job_retention_s=retention_s,
        reap=reap,
        fence=fence,
    )
    # before tracking: after_worker_shutdown runs in reverse, so the writer's last acks land
    # before Recovery removes this worker's heartbeat (an ack set without a heartbeat is never reaped)
    broker.middleware.insert(retries_at, recovery)
    # right after the guard: a message waits at the gate before AgeLimit and TimeLimit start counting its run
    broker.middleware.insert(1, StartGate(fence))
    for middleware in (DaemonAsyncIO(), CurrentMessage(), PeriodiqMiddleware(skip_delay=7 * 86400)):
        broker.add_middleware(middleware)
    if metrics and settings.metrics_port:
        # Dramatiq's exposition server reads its address from the environment at import
        os.environ.setdefault("dramatiq_prom_host", settings.api_host)
        os.environ.setdefault("dramatiq_prom_port", str(settings.metrics_port))
        broker.add_middleware(_prometheus())
    return broker


class DaemonAsyncIO(AsyncIO):
    """Dramatiq's AsyncIO with a daemon event-loop thread.

    A worker process that gets a second SIGTERM (a supervisor signalling the whole group
    while the master forwards its own) calls sys.exit without stopping the worker; with a
    non-daemon loop thread the process then hangs forever instead of exiting.
    """

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        from dramatiq.asyncio import EventLoopThread, set_event_loop_thread

        thread = EventLoopThread(self.logger)
        thread.daemon = True
        thread.start(timeout=1.0)
        set_event_loop_thread(thread)


def _prometheus() -> Any:
    from dramatiq.middleware.prometheus import Prometheus

    class PoolPrometheus(Prometheus):
        """Every worker records metrics; only the pool's first process serves them (one port)."""

        @property
        def forks(self) -> list:
            return [serve_metrics] if os.environ.get("BACKROOM_METRICS_EXPOSE", "1") != "0" else []

    return PoolPrometheus()


def serve_metrics() -> int:
    """Dramatiq's Prometheus exposition server, in a process that dies with the master that forked it.

    Otherwise a SIGKILLed master leaves it serving stale metrics on the port its replacement needs.
    """
    from dramatiq.middleware.prometheus import Prometheus

    die_with_parent()
    [serve] = Prometheus().forks
    return int(serve())


def _bound_retries(broker: BackroomBroker, settings: EdgeSettings) -> None:
    for middleware in broker.middleware:
        if isinstance(middleware, Retries):
            middleware.max_retries = settings.default_max_retries
            middleware.min_backoff = 1_000
            middleware.max_backoff = settings.default_max_backoff_ms


def install(broker: BackroomBroker) -> BackroomBroker:
    """Make `broker` the global Dramatiq broker (actors declared after this bind to it)."""
    dramatiq.set_broker(broker)
    return broker
