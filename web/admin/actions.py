"""What the /admin/ pages' forms post: pause/resume, requeue, discard, replay, sign out.

Each needs a session whose token has the `admin` scope and the session's CSRF token;
each calls the same service as the admin API and writes the same audit row, then
redirects back with a message.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from quart import Blueprint, flash, redirect, request, url_for

from admin.replay import NotDeadLettered
from web.admin.api import record, run, service
from web.admin.schemas import DeadQuery
from web.admin.session import csrf_valid, page_error, sign_out, signed_in

blueprint = Blueprint("admin_actions", __name__, url_prefix="/admin")


@blueprint.post("/logout")
async def logout() -> Any:
    """End the session."""
    if not await csrf_valid():
        return await page_error(403, "The form was stale (CSRF check failed). Reload and retry.")
    await sign_out()
    return redirect(url_for("admin_pages.login"), 303)


@blueprint.post("/queues/<queue>/<action>")
@signed_in("admin")
async def pause_or_resume(queue: str, action: str) -> Any:
    """Pause or resume a queue."""
    admin = service()
    if queue not in admin.queues or action not in ("pause", "resume"):
        return await page_error(404, "No such queue or action.")
    entry = await run(admin.pause if action == "pause" else admin.resume, queue)
    await record(entry)
    await flash(f"Queue {queue} {'paused' if action == 'pause' else 'resumed'}.")
    return redirect(url_for("admin_pages.overview"), 303)


async def _selection(queue: str) -> tuple[list[str], dict[str, Any] | None, Any]:
    """The ids ticked on the form, or the filters when `all_matching` was asked; or an error page."""
    form = await request.form
    if queue not in service().queues:
        return [], None, await page_error(404, f"Unknown queue {queue!r}.")
    if form.get("all_matching"):
        try:
            times = DeadQuery(since=form.get("since") or None, until=form.get("until") or None)
        except ValidationError:
            return [], None, await page_error(422, "The time filter is not a date and time.")
        filters = {
            "actor": form.get("actor") or None,
            "error_contains": form.get("error") or None,
            "since": times.since,
            "until": times.until,
        }
        return [], filters, None
    ids = form.getlist("ids")
    if not ids:
        await flash("Tick at least one dead letter first.")
        return [], None, redirect(_back(queue), 303)
    return ids, None, None


def _back(queue: str) -> str:
    return url_for("admin_pages.dead", queue=queue)


@blueprint.post("/dead/<queue>/requeue")
@signed_in("admin")
async def requeue(queue: str) -> Any:
    """Requeue ticked (or all matching) dead letters."""
    ids, filters, stop = await _selection(queue)
    if stop is not None:
        return stop
    admin = service()
    if filters is not None:
        result, entry = await run(admin.requeue_matching, queue, **filters)
    else:
        result, entry = await run(admin.requeue, queue, ids)
    await record(entry)
    skipped = f" ({len(result.skipped)} already gone)" if result.skipped else ""
    await flash(f"Requeued {len(result.requeued)} dead letter(s) on {queue}{skipped}.")
    return redirect(_back(queue), 303)


@blueprint.post("/dead/<queue>/discard")
@signed_in("admin")
async def discard(queue: str) -> Any:
    """Discard ticked (or all matching) dead letters."""
    ids, filters, stop = await _selection(queue)
    if stop is not None:
        return stop
    admin = service()
    if filters is not None:
        removed, entry = await run(admin.discard_matching, queue, **filters)
    else:
        removed, entry = await run(admin.discard, queue, ids)
    await record(entry)
    await flash(f"Discarded {removed} dead letter(s) from {queue}.")
    return redirect(_back(queue), 303)


@blueprint.post("/dead/<queue>/<ident>/replay")
@signed_in("admin")
async def replay(queue: str, ident: str) -> Any:
    """Replay a dead letter with the arguments edited on its job page."""
    form = await request.form
    if queue not in service().queues:
        return await page_error(404, f"Unknown queue {queue!r}.")
    try:
        args, kwargs = json.loads(form.get("args") or "[]"), json.loads(form.get("kwargs") or "{}")
    except ValueError as error:
        return await page_error(422, f"The arguments are not valid JSON: {error}")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return await page_error(422, "Arguments must be a JSON list and keyword arguments a JSON object.")
    try:
        result, entry = await run(service().replay, queue, ident, args=args, kwargs=kwargs)
    except NotDeadLettered as error:
        return await page_error(409, f"{error}: it was already requeued, replayed or discarded.")
    await record(entry)
    await flash(f"Replayed as job {result.job_id}.")
    return redirect(url_for("admin_pages.job", job_id=result.job_id), 303)
