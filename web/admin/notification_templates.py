"""/v1/admin/notification-templates: edit templates as new versions, with a preview and a required-fields check.

An edit is configuration, written here with its audit row in one transaction (as schedule
settings are, admin/schedules.py); the next send of the template uses the new version.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from quart import Blueprint, current_app
from quart_schema import document_response, tag

from db.audit import insert_audit
from db.notifications import StoredTemplate, insert_template, select_templates
from domain.admin import AuditEntry
from domain.notifications import (
    TEMPLATE_BODY,
    TEMPLATE_TEXT,
    TEMPLATES,
    MessageTemplate,
    TemplateError,
    check_edit,
    fields_of,
    render,
)
from web.admin.api import ACT, READ
from web.auth import require, who
from web.bodies import validate_body
from web.errors import problem
from web.schemas import TEXT, Problem, reply

blueprint = Blueprint("admin_templates", __name__, url_prefix="/v1/admin/notification-templates")
NAME = r"^[a-z][a-z0-9_]{0,99}$"
NAME_RE = re.compile(NAME[1:-1])
LOCALE = r"^[a-z]{2}(-[A-Z]{2})?$"
Value = str | int | float | bool | None


def _placeholders_read(text: str) -> str:
    """Refuse a malformed placeholder, naming where it is (the schema's pattern says the same, less readably)."""
    fields_of(MessageTemplate(text, ""))  # TemplateError is a ValueError: pydantic reports it on the field
    return text


def _not_blank(text: str) -> str:
    check_edit("", MessageTemplate("", text))
    return text


# NUL is refused by TEXT; the schema's pattern also states the placeholder syntax and (for a body) "not blank"
Subject = Annotated[
    str,
    Field(max_length=300, pattern=TEXT, json_schema_extra={"pattern": TEMPLATE_TEXT}),
    AfterValidator(_placeholders_read),
]
Body = Annotated[
    str,
    Field(min_length=1, max_length=10_000, pattern=TEXT, json_schema_extra={"pattern": TEMPLATE_BODY}),
    AfterValidator(_placeholders_read),
    AfterValidator(_not_blank),
]


class TemplateEdit(BaseModel):
    """A new version's text for one channel ('*': every channel) and locale."""

    model_config = ConfigDict(extra="forbid", strict=True)
    channel: Literal["*", "email", "push", "chat"] = "*"
    locale: str = Field("en", pattern=LOCALE)
    # Postgres refuses NUL in text: refused here (422), not by the insert (500)
    subject: Subject
    body: Body


class PreviewBody(TemplateEdit):
    """An edit to check and render, with sample data (fields left out show as `<field>`)."""

    data: dict[str, Value] = Field(default_factory=dict, max_length=50)


class Preview(BaseModel):
    """The rendered text and the fields the version needs."""

    subject: str
    text: str
    required_fields: list[str]


class VersionOut(BaseModel):
    """One stored version."""

    name: str
    channel: str
    locale: str
    version: int
    subject: str
    body: str
    created_by: str | None


class TemplateList(BaseModel):
    """Code defaults and stored versions (newest first per channel and locale)."""

    defaults: dict[str, VersionOut]
    versions: list[VersionOut]


def _out(t: StoredTemplate) -> VersionOut:
    return VersionOut.model_validate(t, from_attributes=True)


def _bad_name(name: str) -> Any:
    return None if NAME_RE.fullmatch(name) else problem(404, "no such template name (a-z, 0-9, _)")


@blueprint.get("")
@require(READ)
@tag(["admin"])
@document_response(TemplateList)
async def list_templates() -> Any:
    """Every template: the code defaults and each stored version."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        stored = await select_templates(conn)
    defaults = {
        name: VersionOut(
            name=name, channel="*", locale="en", version=0, subject=t.subject, body=t.body, created_by=None
        )
        for name, t in TEMPLATES.items()
    }
    return reply(TemplateList(defaults=defaults, versions=[_out(t) for t in stored]))


@blueprint.post("/<name>/preview")
@require(READ)
@tag(["admin"])
@validate_body(PreviewBody)
@document_response(Preview)
@document_response(Problem, 404)
@document_response(Problem, 422)
async def preview_template(name: str, data: PreviewBody) -> Any:
    """Check an edit's fields (422 naming what no sender provides) and render it with sample data; nothing stored."""
    if (bad := _bad_name(name)) is not None:
        return bad
    edit = MessageTemplate(data.subject, data.body)
    try:
        needed = check_edit(name, edit)
        sample = {field: f"<{field}>" for field in needed} | {k: v for k, v in data.data.items()}
        rendered = render(name, sample, edit)
    except TemplateError as error:
        return problem(422, "invalid template", fields={"body": str(error)})
    return reply(Preview(subject=rendered.subject, text=rendered.text, required_fields=sorted(needed)))


@blueprint.post("/<name>")
@require(ACT)
@tag(["admin"])
@validate_body(TemplateEdit)
@document_response(VersionOut, 201)
@document_response(Problem, 404)
@document_response(Problem, 422)
async def save_template(name: str, data: TemplateEdit) -> Any:
    """Store an edit as the next version (after the same check as the preview); the next send uses it."""
    if (bad := _bad_name(name)) is not None:
        return bad
    try:
        check_edit(name, MessageTemplate(data.subject, data.body))
    except TemplateError as error:
        return problem(422, "invalid template", fields={"body": str(error)})
    async with current_app.config["DB_POOL"].acquire() as conn, conn.transaction():
        stored = await insert_template(conn, name, data.channel, data.locale, data.subject, data.body, by=who())
        await insert_audit(
            conn,
            actor=who(),
            entry=AuditEntry(
                action="notification_templates.edit",
                target=f"notification_templates:{name}:{data.channel}:{data.locale}",
                after={"version": stored.version, "subject": data.subject, "body": data.body},
            ),
        )
    return reply(_out(stored), 201)
