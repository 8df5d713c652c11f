"""`backroom edge credentials|revoke NODE`: a Redis ACL user that can only do an edge worker's work, and its end."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis
import typer

from broker.acl import edge_acl_rules, edge_user_name
from broker.gateway import drop_signing_key, store_signing_key
from broker.keys import Keys
from domain.contracts import EDGE_ACTORS, RESULTS_QUEUE
from domain.edge_registry import valid_node_id
from domain.edge_results import signing_key

EXTRA_EDGE_ACTORS = ("ping_edge",)  # declared in edge.actors, not part of the cross-boundary contract


@dataclass(frozen=True)
class EdgeCredentials:
    """What a node needs: its user, its password (shown once) and its REDIS_URL."""

    node_id: str
    user: str
    password: str
    redis_url: str


def create_edge_credentials(
    client: Any, namespace: str, node_id: str, *, host: str, port: int, db: int = 0, tls: bool = False
) -> EdgeCredentials:
    """Create or replace `node_id`'s ACL user on the server behind `client` with a new random password."""
    if not valid_node_id(node_id):
        raise ValueError("a node id is letters, digits, `_`, `.` and `-` (at most 63, starting with a letter or digit)")
    major = int(str(client.info("server")["redis_version"]).split(".")[0])
    password = secrets.token_urlsafe(32)
    rules = edge_acl_rules(
        Keys(namespace),
        node_id,
        password=password,
        redis7=major >= 7,
        deliver_to=[RESULTS_QUEUE],
        edge_actors=[*EDGE_ACTORS, *EXTRA_EDGE_ACTORS],
    )
    user = edge_user_name(node_id)
    client.execute_command("ACL", "SETUSER", user, *rules)
    # the old password's connections and signed deliveries stop working with the new credential
    store_signing_key(client, Keys(namespace), node_id, signing_key(password))
    kill_connections(client, user)
    scheme = "rediss" if tls else "redis"
    url = f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{db}"
    return EdgeCredentials(node_id=node_id, user=user, password=password, redis_url=url)


def kill_connections(client: Any, user: str) -> int:
    """Close every live connection of `user`; returns how many."""
    return int(client.execute_command("CLIENT", "KILL", "USER", user))


def revoke_edge_credentials(client: Any, namespace: str, node_id: str) -> bool:
    """Delete `node_id`'s ACL user, drop its live connections and refuse its deliveries; False when it had none."""
    if not valid_node_id(node_id):
        raise ValueError("a node id is letters, digits, `_`, `.` and `-` (at most 63, starting with a letter or digit)")
    user = edge_user_name(node_id)
    try:
        kill_connections(client, user)
    except redis.ResponseError:  # no such user
        pass
    existed = bool(client.execute_command("ACL", "DELUSER", user))  # also closes connections opened since
    dropped = drop_signing_key(client, Keys(namespace), node_id)
    return existed or dropped


def _server_client() -> tuple[Any, Any]:
    """The edge settings and a client on the server's Redis (Sentinel-aware)."""
    from broker.setup import redis_client
    from config.settings import get_edge_settings

    settings = get_edge_settings()
    return settings, redis_client(settings) or redis.Redis.from_url(settings.redis_url)


def _history(node: str, action: str, user: str) -> None:
    """Keep the credential's history and an audit row (Postgres); a warning when the database is unreachable."""
    from cli.admin import audited, with_db
    from db.edge_credentials import insert_edge_credential, revoke_edge_credential
    from domain.admin import AuditEntry
    from admin.service import cli_actor

    by = cli_actor()
    try:
        if action == "edge.credentials":
            with_db(lambda conn: insert_edge_credential(conn, node, user, by=by))
        else:
            with_db(lambda conn: revoke_edge_credential(conn, node, by=by))
        audited(AuditEntry(action=action, target=f"edge:{node}", after={"redis_user": user}))
    except Exception as error:  # noqa: BLE001  the credential itself is done; say what was not recorded
        typer.echo(f"backroom: warning: {action} for {node} not recorded in the database: {error}", err=True)


def credentials(
    node: str = typer.Argument(..., help="The edge node's id (its EDGE_NODE_ID)."),
    host: str = typer.Option(None, help="The Redis host as the node reaches it (default: REDIS_URL's)."),
    port: int = typer.Option(None, help="The Redis port as the node reaches it (default: REDIS_URL's)."),
    tls: bool = typer.Option(None, "--tls/--no-tls", help="Print a rediss:// URL (default: as REDIS_URL)."),
) -> None:
    """Create or replace NODE's Redis ACL user (consume `edge`, deliver signed results, heartbeat); print it once."""
    settings, client = _server_client()
    parsed = redis.connection.parse_url(settings.redis_url)
    try:
        made = create_edge_credentials(
            client,
            settings.redis_namespace,
            node,
            host=host or parsed.get("host") or "127.0.0.1",
            port=port or parsed.get("port") or 6379,
            db=int(parsed.get("db") or 0),
            tls=settings.redis_url.startswith("rediss://") if tls is None else tls,
        )
    except ValueError as error:
        typer.echo(f"backroom: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        client.close()
    _history(node, "edge.credentials", made.user)
    typer.echo(f"# Redis user {made.user} (password shown once; run this again to replace it)")
    typer.echo(f"REDIS_URL={made.redis_url}")
    typer.echo(f"EDGE_NODE_ID={made.node_id}")


def revoke(node: str = typer.Argument(..., help="The edge node's id (its EDGE_NODE_ID).")) -> None:
    """Delete NODE's Redis user, drop its live connections and refuse its results; kept in its history."""
    settings, client = _server_client()
    try:
        existed = revoke_edge_credentials(client, settings.redis_namespace, node)
    except ValueError as error:
        typer.echo(f"backroom: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        client.close()
    _history(node, "edge.revoke", edge_user_name(node))
    typer.echo(f"revoked {edge_user_name(node)}" if existed else f"{node} had no credential (nothing to revoke)")
