"""/v1/reminders and /v1/notifications: subjects, policies, preferences and the log, for storefronts.

Writes validate here and go through actors (202); reads come straight from the database.
"""

from __future__ import annotations

import re
from datetime import date, time
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.json_schema import JsonDict
from quart import Blueprint, current_app
from quart_schema import document_response, tag, validate_querystring

from actors.reminders import (
    delete_reminder_policy,
    delete_reminder_subject,
    now_us,
    update_preferences,
    upsert_reminder_policy,
    upsert_reminder_subject,
)
from db.notifications import select_templates
from db.reminders import LogEntry, Scheduled, select_log, select_policy, select_preferences, select_subject_reminders
from domain.notifications import PROVIDED_FIELDS, TEMPLATES, TemplateError, required_fields
from domain.reminders import MAX_OFFSET_MINUTES, ReminderError, known_zones, zone
from web.auth import require
from web.bodies import validate_body
from web.enqueue import enqueue
from web.errors import document_errors, problem
from web.schemas import TEXT, Accepted, FieldName, FieldValue, Problem, int_in, names_in_full, reply

blueprint = Blueprint("reminders", __name__, url_prefix="/v1")
Channel = Literal["email", "push", "chat"]
ID = r"^[A-Za-z0-9@._:+-]{1,200}$"
ID_RE = re.compile(ID[1:-1])
LOCALE = r"^[a-z]{2}(-[A-Z]{2})?$"


def _known_zone(value: str) -> str:
    try:
        zone(value)
    except ReminderError as error:
        raise ValueError(str(error)) from None
    return value


# the zones are listed once in the schema (a component); the before-validator keeps the error message short
if TYPE_CHECKING:  # the checker cannot type an Enum made at start: it sees a str Enum without members

    class Zone(str, Enum): ...
else:
    Zone = Enum("TimeZone", {name: name for name in known_zones()}, type=str)


def _as_zone(value: Any) -> Any:
    """A known zone's name as the enum member (strict validation takes only members); a short error else."""
    if isinstance(value, Zone):
        return value
    if not isinstance(value, str):
        raise ValueError("a time zone is an IANA name like Europe/Paris")
    return Zone(_known_zone(value))


TimeZone = Annotated[Zone, BeforeValidator(_as_zone)]
if TYPE_CHECKING:  # int_in makes the bounded type at run time
    Offset = int
    DailyCap = int
else:
    Offset = int_in(0, MAX_OFFSET_MINUTES)
    DailyCap = int_in(1, 1000)
Address = Annotated[str, Field(min_length=1, max_length=320, pattern=TEXT)]
# an occasion from 1900 through 2199 (its sends are computed in that range), stated in the schema
OCCURS_ON = r"^(19|2[01])[0-9]{2}-[0-9]{2}-[0-9]{2}$"
OccursOn = Annotated[date, WithJsonSchema({"type": "string", "format": "date", "pattern": OCCURS_ON})]
# offsets_minutes and channels come together, or neither does (a policy applies)
TOGETHER: JsonDict = {
    "anyOf": [
        {"properties": {"offsets_minutes": {"maxItems": 0}, "channels": {"maxItems": 0}}},
        {
            "required": ["offsets_minutes", "channels"],
            "properties": {"offsets_minutes": {"minItems": 1}, "channels": {"minItems": 1}},
        },
    ]
}
# quiet_start and quiet_end come together, or neither does
QUIET_PAIR: JsonDict = {
    "anyOf": [
        {"properties": {"quiet_start": {"type": "null"}, "quiet_end": {"type": "null"}}},
        {
            "required": ["quiet_start", "quiet_end"],
            "properties": {"quiet_start": {"type": "string"}, "quiet_end": {"type": "string"}},
        },
    ]
}


class PolicyBody(BaseModel):
    """Offsets in minutes before the occasion (whole days for all-day ones) and the channels."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    owner: str | None = Field(None, max_length=200, pattern=TEXT)
    offsets_minutes: list[Offset] = Field(min_length=1, max_length=16)
    channels: list[Channel] = Field(min_length=1, max_length=3)
    send_at: time = time(9, 0)

    @field_validator("offsets_minutes")
    @classmethod
    def _offsets(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


class SubjectBody(BaseModel):
    """An occasion (or any dated subject) for a recipient: when, where in the world, and how to remind."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=TOGETHER)
    recipient: str = Field(pattern=ID)
    addresses: dict[Channel, Address] = Field(min_length=1, max_length=3)
    occurs_on: OccursOn
    at: time | None = Field(None, description="Local time of the occasion; absent: all day.")
    time_zone: TimeZone = Zone("UTC")
    recurrence: Literal["none", "yearly"] = "none"
    policy_id: str | None = Field(None, pattern=ID)
    offsets_minutes: list[Offset] = Field(default_factory=list, max_length=16)
    channels: list[Channel] = Field(default_factory=list, max_length=3)
    send_at: time = time(9, 0)
    template: str = Field(min_length=1, max_length=100, pattern=TEXT)
    data: dict[FieldName, FieldValue] = Field(default_factory=dict, max_length=50, json_schema_extra=names_in_full)

    @model_validator(mode="after")
    def _policy_or_offsets(self) -> SubjectBody:
        if bool(self.offsets_minutes) != bool(self.channels):
            raise ValueError("give offsets_minutes and channels together (or neither: a policy applies)")
        if not 1900 <= self.occurs_on.year <= 2199:
            raise ValueError("occurs_on is between 1900 and 2199")
        return self


class PreferencesBody(BaseModel):
    """A recipient's preferences, replaced as a whole."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=QUIET_PAIR)
    time_zone: TimeZone = Zone("UTC")
    channels_off: list[Channel] = Field(default_factory=list, max_length=3)
    quiet_start: time | None = None
    quiet_end: time | None = None
    daily_cap: DailyCap | None = None
    opted_out: bool = False
    locale: str = Field("en", pattern=LOCALE)
    default_policy_id: str | None = Field(None, pattern=ID, description="For subjects that name no policy.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> PreferencesBody:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("give both quiet_start and quiet_end, or neither")
        return self


class PreferencesOut(PreferencesBody):
    """A recipient's preferences (the defaults when none were set)."""

    recipient: str


class ScheduledList(BaseModel):
    """A subject's sends."""

    subject: str
    reminders: list[Scheduled]


class LogQuery(BaseModel):
    """Whose log, and a page of it (newest first; `before_id` pages back)."""

    recipient: str | None = Field(None, pattern=ID)
    subject: str | None = Field(None, pattern=ID)
    before_id: int | None = Field(None, ge=1)
    limit: int = Field(50, ge=1, le=500)


class LogOut(BaseModel):
    """A page of the log."""

    entries: list[LogEntry]


def _bad_id(value: str) -> Any:
    return None if ID_RE.fullmatch(value) else problem(404, "no such id (ids are 1..200 of A-Za-z0-9@._:+-)")


@blueprint.put("/reminders/policies/<policy_id>")
@require("jobs")
@tag(["reminders"])
@validate_body(PolicyBody)
@document_response(Accepted, 202)
@document_response(Problem, 404)
@document_response(Problem, 422)
async def put_policy(policy_id: str, data: PolicyBody) -> Any:
    """Create or replace a reminder policy (offsets and channels)."""
    if (bad := _bad_id(policy_id)) is not None:
        return bad
    return await enqueue(
        upsert_reminder_policy,
        policy_id=policy_id,
        name=data.name,
        owner=data.owner,
        offsets_minutes=data.offsets_minutes,
        channels=list(data.channels),
        send_at=data.send_at.isoformat(),
    )


@blueprint.delete("/reminders/policies/<policy_id>")
@require("jobs")
@tag(["reminders"])
@document_response(Accepted, 202)
@document_response(Problem, 404)
@document_response(Problem, 422)
async def delete_policy(policy_id: str) -> Any:
    """Delete a reminder policy (subjects keep the offsets they copied from it)."""
    if (bad := _bad_id(policy_id)) is not None:
        return bad
    return await enqueue(delete_reminder_policy, policy_id=policy_id)


@blueprint.put("/reminders/subjects/<subject>")
@require("jobs")
@tag(["reminders"])
@validate_body(SubjectBody)
@document_response(Accepted, 202)
@document_errors(404, 409)
async def put_subject(subject: str, data: SubjectBody) -> Any:
    """Create or move an occasion: its pending sends are rescheduled or cancelled in one transaction.

    404: the policy or template it names does not exist; 409: the addresses or data do not
    cover what the policy's channels or the template need.
    """
    if (bad := _bad_id(subject)) is not None:
        return bad
    async with current_app.config["DB_POOL"].acquire() as conn:
        policy_id = data.policy_id or (
            None if data.offsets_minutes else (await select_preferences(conn, data.recipient)).default_policy_id
        )
        policy = await select_policy(conn, policy_id) if policy_id else None
        stored = [] if data.template in TEMPLATES else await select_templates(conn, data.template)
    if (refused := _unfit(data, policy_id, policy, stored)) is not None:
        return refused
    return await enqueue(
        upsert_reminder_subject,
        subject=subject,
        recipient=data.recipient,
        addresses=dict(data.addresses),
        occurs_on=data.occurs_on.isoformat(),
        time_zone=data.time_zone.value,
        at=data.at and data.at.isoformat(),
        recurrence=data.recurrence,
        offsets_minutes=data.offsets_minutes,
        channels=list(data.channels),
        template=data.template,
        data=data.data,
        send_at=data.send_at.isoformat(),
        policy_id=data.policy_id,
        revision=now_us(),
    )


def _unfit(data: SubjectBody, policy_id: str | None, policy: Any, stored: list[Any]) -> Any:
    """Why a well-formed subject cannot be taken as it stands (a problem answer), or None."""
    channels = list(data.channels)
    if policy_id or not data.offsets_minutes:
        if policy is None:
            return problem(
                404,
                "no such reminder policy (name one, give offsets_minutes and channels, or set the "
                "recipient's default_policy_id)",
            )
        channels = list(policy.channels)
    if missing := [c for c in channels if c not in data.addresses]:
        return problem(409, f"addresses: no address for {', '.join(missing)}")
    try:
        needed = required_fields(data.template, stored[0].message() if stored else None)
    except TemplateError as error:
        return problem(404, f"template: {error}")
    if needed := needed - PROVIDED_FIELDS - set(data.data):
        return problem(409, f"data: missing field(s) the template needs: {', '.join(sorted(needed))}")
    return None


@blueprint.delete("/reminders/subjects/<subject>")
@require("jobs")
@tag(["reminders"])
@document_response(Accepted, 202)
@document_response(Problem, 404)
@document_response(Problem, 422)
async def delete_subject(subject: str) -> Any:
    """Delete an occasion: its pending sends are cancelled."""
    if (bad := _bad_id(subject)) is not None:
        return bad
    return await enqueue(delete_reminder_subject, subject=subject, revision=now_us())


@blueprint.get("/reminders/subjects/<subject>")
@require("jobs")
@tag(["reminders"])
@document_response(ScheduledList)
@document_response(Problem, 404)
async def get_subject(subject: str) -> Any:
    """An occasion's scheduled sends: next occurrence, due time (UTC), status."""
    if (bad := _bad_id(subject)) is not None:
        return bad
    async with current_app.config["DB_POOL"].acquire() as conn:
        rows = await select_subject_reminders(conn, subject)
    if not rows:
        return problem(404, "no such subject")
    return reply(ScheduledList(subject=subject, reminders=rows))


@blueprint.get("/notifications/preferences/<recipient>")
@require("jobs")
@tag(["notifications"])
@document_response(PreferencesOut)
@document_response(Problem, 404)
async def get_preferences(recipient: str) -> Any:
    """A recipient's channels, quiet hours, daily cap and opt-out (defaults when never set)."""
    if (bad := _bad_id(recipient)) is not None:
        return bad
    async with current_app.config["DB_POOL"].acquire() as conn:
        prefs = await select_preferences(conn, recipient)
    return reply(
        PreferencesOut(
            recipient=recipient,
            time_zone=Zone(prefs.time_zone),
            channels_off=cast(list[Channel], sorted(prefs.channels_off)),  # stored from a body
            quiet_start=prefs.quiet_start,
            quiet_end=prefs.quiet_end,
            daily_cap=prefs.daily_cap,
            opted_out=prefs.opted_out,
            locale=prefs.locale,
            default_policy_id=prefs.default_policy_id,
        )
    )


@blueprint.put("/notifications/preferences/<recipient>")
@require("jobs")
@tag(["notifications"])
@validate_body(PreferencesBody)
@document_response(Accepted, 202)
@document_response(Problem, 404)
@document_response(Problem, 422)
async def put_preferences(recipient: str, data: PreferencesBody) -> Any:
    """Replace a recipient's preferences; each of their next sends is judged by them."""
    if (bad := _bad_id(recipient)) is not None:
        return bad
    return await enqueue(
        update_preferences,
        recipient=recipient,
        time_zone=data.time_zone.value,
        channels_off=sorted(data.channels_off),
        daily_cap=data.daily_cap,
        opted_out=data.opted_out,
        locale=data.locale,
        default_policy_id=data.default_policy_id,
        quiet_start=data.quiet_start and data.quiet_start.isoformat(),
        quiet_end=data.quiet_end and data.quiet_end.isoformat(),
    )


@blueprint.get("/notifications/log")
@require("jobs")
@tag(["notifications"])
@validate_querystring(LogQuery)
@document_response(LogOut)
@document_response(Problem, 422)
async def get_log(query_args: LogQuery) -> Any:
    """What happened to each send (queued, deferred, sending, sent, failed, skipped, cancelled), newest first."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        entries = await select_log(
            conn,
            recipient=query_args.recipient,
            subject=query_args.subject,
            before_id=query_args.before_id,
            limit=query_args.limit,
        )
    return reply(LogOut(entries=entries))
