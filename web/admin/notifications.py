"""/admin/notifications: the reminder log and the notification templates (edit with a preview)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from quart import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from db.audit import insert_audit
from db.notifications import insert_template, select_templates
from db.reminders import select_log
from domain.admin import AuditEntry
from domain.notifications import TEMPLATES, MessageTemplate, TemplateError, check_edit, render
from web.admin.session import signed_in
from web.admin.notification_templates import NAME_RE, TemplateEdit

blueprint = Blueprint("admin_notifications", __name__, url_prefix="/admin")


async def _page(
    form: dict[str, str] | None = None, preview: Any = None, error: str | None = None, status: int = 200
) -> Any:
    recipient = (request.args.get("recipient") or "")[:200] or None
    async with current_app.config["DB_POOL"].acquire() as conn:
        log = await select_log(conn, recipient=recipient, limit=100)
        stored = await select_templates(conn)
    page = await render_template(
        "admin/notifications.html",
        log=log,
        stored=stored,
        defaults=TEMPLATES,
        recipient=recipient or "",
        form=form or {},
        preview=preview,
        error=error,
    )
    return page, status


@blueprint.get("/notifications")
@signed_in()
async def page() -> Any:
    """The newest reminder log entries (of one recipient, if asked) and every template version."""
    name = (request.args.get("edit") or "")[:100]
    found = TEMPLATES.get(name)
    form = (
        {
            "name": name,
            "channel": "*",
            "locale": "en",
            "subject": found.subject if found else "",
            "body": found.body if found else "",
        }
        if name
        else None
    )
    return await _page(form)


async def _edit() -> tuple[dict[str, str], TemplateEdit | None, str | None]:
    """The posted form, the edit it makes, or why it is not valid."""
    form = {k: str(v) for k, v in (await request.form).items() if k != "csrf_token"}
    name = form.get("name", "")
    if not NAME_RE.fullmatch(name):
        return form, None, "A template name is a-z, 0-9 and _ (starting with a letter)."
    try:
        edit = TemplateEdit.model_validate(
            {
                "channel": form.get("channel", "*"),
                "locale": form.get("locale", "en"),
                "subject": form.get("subject", ""),
                "body": form.get("body", ""),
            }
        )
        check_edit(name, MessageTemplate(edit.subject, edit.body))
    except ValidationError as error:
        return form, None, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    except TemplateError as error:
        return form, None, str(error)
    return form, edit, None


@blueprint.post("/notifications/preview")
@signed_in()
async def preview() -> Any:
    """Check the edit's fields and render it with `<field>` placeholders; nothing is stored."""
    form, edit, error = await _edit()
    if edit is None:
        return await _page(form, error=error, status=422)
    message = MessageTemplate(edit.subject, edit.body)
    needed = check_edit(form["name"], message)
    rendered = render(form["name"], {f: f"<{f}>" for f in needed}, message)
    return await _page(form, preview={"subject": rendered.subject, "text": rendered.text, "fields": sorted(needed)})


@blueprint.post("/notifications/templates")
@signed_in("admin")
async def save() -> Any:
    """Store the edit as the next version (audited); the next send of the template uses it."""
    form, edit, error = await _edit()
    if edit is None:
        return await _page(form, error=error, status=422)
    by = f"session:{g.token.id}:{g.token.name}"
    async with current_app.config["DB_POOL"].acquire() as conn, conn.transaction():
        stored = await insert_template(conn, form["name"], edit.channel, edit.locale, edit.subject, edit.body, by=by)
        await insert_audit(
            conn,
            actor=by,
            entry=AuditEntry(
                action="notification_templates.edit",
                target=f"notification_templates:{stored.name}:{stored.channel}:{stored.locale}",
                after={"version": stored.version, "subject": stored.subject, "body": stored.body},
            ),
        )
    await flash(f"Saved {stored.name} ({stored.channel}, {stored.locale}) as version {stored.version}.")
    return redirect(url_for("admin_notifications.page"), 303)
