"""POST /v1/jobs/notify's checks: a known template with its fields, and a provider that is configured."""

from __future__ import annotations

from typing import Any

from actors.notify import notify
from config.settings import get_settings
from domain.notifications import PROVIDER_OF, TemplateError, required_fields
from providers.registry import sender_name
from web.enqueue import enqueue
from web.errors import problem
from web.schemas import NotifyJob


async def enqueue_notify(data: NotifyJob) -> Any:
    """422 for an unknown template or missing data, 503 when the channel has no provider, else enqueue."""
    try:
        missing = sorted(required_fields(data.template) - set(data.data))
    except TemplateError as error:
        return problem(422, "invalid request body", fields={"template": str(error)})
    if missing:
        return problem(422, "invalid request body", fields={"data": f"missing field(s): {', '.join(missing)}"})
    if sender_name(get_settings(), data.channel) is None:
        return problem(
            503,
            f"provider not configured: {PROVIDER_OF[data.channel]} ({data.channel})",
            headers={"Retry-After": "300"},
        )
    return await enqueue(
        notify,
        unique_key=data.unique_key,
        channel=data.channel,
        recipient=data.recipient,
        template=data.template,
        data=data.data,
        idempotency_key=data.idempotency_key,
    )
