"""/admin/storefronts: storefront endpoints with their delivery log; enable, disable, replay from the page."""

from __future__ import annotations

import asyncio
from datetime import datetime, UTC
from typing import Any

from quart import Blueprint, current_app, flash, redirect, render_template, request, url_for

from admin.endpoints import EndpointRefused, endpoint_view, replay, set_enabled
from db.events import select_attempts, select_endpoints
from web.admin.session import page_error, signed_in
from web.auth import who

blueprint = Blueprint("admin_storefronts", __name__, url_prefix="/admin", template_folder="templates")
LOG_ROWS = 100


async def sweep() -> None:
    """Have the worker send what now waits without a message."""
    from actors.events import sweep_events

    await asyncio.to_thread(sweep_events.send, 0)


@blueprint.get("/storefronts")
@signed_in()
async def storefronts() -> Any:
    """Every endpoint, and the delivery log of the one picked (?show=ID)."""
    raw = request.args.get("show", "")
    picked = int(raw) if raw.isdigit() and len(raw) < 18 else None
    async with current_app.config["DB_POOL"].acquire() as conn:
        endpoints = [endpoint_view(e) for e in await select_endpoints(conn)]
        if picked is None and endpoints:
            picked = int(endpoints[0]["id"])  # type: ignore[call-overload]  # a view's id is the row's int id
        attempts = await select_attempts(conn, picked, limit=LOG_ROWS) if picked is not None else []
    return await render_template("admin/storefronts.html", endpoints=endpoints, picked=picked, attempts=attempts)


@blueprint.post("/storefronts/<int:endpoint_id>/<action>")
@signed_in("admin")
async def act(endpoint_id: int, action: str) -> Any:
    """enable, disable, or replay (every event since the form's `since`, UTC)."""
    form = await request.form
    try:
        async with current_app.config["DB_POOL"].acquire() as conn:
            if action in ("enable", "disable"):
                changed = await set_enabled(conn, endpoint_id, action == "enable", by=who())
                message = f"Endpoint {endpoint_id} {action}d." if changed else f"Endpoint {endpoint_id} unchanged."
            elif action == "replay":
                since = datetime.fromisoformat(form.get("since", "")[:40]).replace(tzinfo=UTC)
                count = await replay(conn, endpoint_id, by=who(), since=since)
                message = f"{count} event(s) queued again for endpoint {endpoint_id}."
            else:
                return await page_error(404, "No such action.")
    except EndpointRefused as error:
        return await page_error(404, str(error))
    except ValueError:
        return await page_error(400, "Give the replay's start as YYYY-MM-DDTHH:MM (UTC).")
    if action != "disable":
        await sweep()
    await flash(message)
    return redirect(url_for("admin_storefronts.storefronts", show=endpoint_id), 303)
