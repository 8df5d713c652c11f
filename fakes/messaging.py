"""Fake Resend, Pushover and Telegram: what they accept, what they answer, how they fail."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

from aiohttp import web

from fakes.base import FakeServer


class FakeResend(FakeServer):
    """`POST /emails` with Idempotency-Key: a replay returns the first id and delivers nothing new."""

    name = "resend"

    def __init__(self, *, api_key: str = "re_fake") -> None:
        super().__init__()
        self.api_key = api_key
        self.reset_state()

    def reset_state(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.keys: dict[str, tuple[str, str]] = {}  # idempotency key -> (payload digest, email id)

    def error(self, status: int, retry_after: float | None) -> Any:
        names = {
            429: "rate_limit_exceeded",
            400: "validation_error",
            401: "missing_api_key",
            403: "invalid_api_key",
            422: "validation_error",
        }
        return {
            "statusCode": status,
            "name": names.get(status, "application_error"),
            "message": "Too many requests" if status == 429 else "fake failure",
        }

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/emails", self.send)]

    async def send(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("send", request)) is not None:
            return failure
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(self.error(403, None) | {"message": "API key is invalid"}, status=403)
        body = await request.json()
        missing = [f for f in ("from", "to", "subject") if not body.get(f)]
        if missing:
            return web.json_response(
                {"statusCode": 422, "name": "missing_required_field", "message": f"Missing `{missing[0]}` field."},
                status=422,
            )
        key = request.headers.get("Idempotency-Key")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.lock:
            if key and key in self.keys:
                if self.keys[key][0] != digest:
                    return web.json_response(
                        {
                            "statusCode": 409,
                            "name": "invalid_idempotent_request",
                            "message": "Same idempotency key used with a different payload",
                        },
                        status=409,
                    )
                return web.json_response({"id": self.keys[key][1]})
            email_id = str(secrets.token_hex(16))
            self.sent.append({"id": email_id, **body, "idempotency_key": key})
            if key:
                self.keys[key] = (digest, email_id)
        return web.json_response({"id": email_id})


class FakePushover(FakeServer):
    """`POST /1/messages.json` (form or JSON); no idempotency, like the real one."""

    name = "pushover"

    def __init__(self, *, token: str = "pushover-app-token", users: tuple[str, ...] = ("pushover-admin-user",)) -> None:
        super().__init__()
        self.token = token
        self.users = set(users)
        self.reset_state()

    def reset_state(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def error(self, status: int, retry_after: float | None) -> Any:
        errors = {429: ["message limit reached"], 400: ["user identifier is invalid"]}
        return {"status": 0, "errors": errors.get(status, ["internal error"]), "request": secrets.token_hex(16)}

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/1/messages.json", self.send)]

    async def send(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("send", request)) is not None:
            if failure.status == 429:  # Pushover says when the quota resets, not Retry-After
                failure.headers["X-Limit-App-Reset"] = str(int(time.time()) + 1)
            return failure
        form = dict(await request.post()) if request.content_type != "application/json" else await request.json()
        request_id = secrets.token_hex(16)
        if form.get("token") != self.token:
            return web.json_response(
                {"token": "invalid", "errors": ["application token is invalid"], "status": 0, "request": request_id},
                status=400,
            )
        if form.get("user") not in self.users:
            return web.json_response(
                {"user": "invalid", "errors": ["user identifier is invalid"], "status": 0, "request": request_id},
                status=400,
            )
        if not form.get("message"):
            return web.json_response(
                {
                    "message": "cannot be blank",
                    "errors": ["message cannot be blank"],
                    "status": 0,
                    "request": request_id,
                },
                status=400,
            )
        with self.lock:
            self.sent.append({"request": request_id, **form})
        return web.json_response(
            {"status": 1, "request": request_id},
            headers={
                "X-Limit-App-Limit": "10000",
                "X-Limit-App-Remaining": "9999",
                "X-Limit-App-Reset": str(int(time.time()) + 86400),
            },
        )


class FakeTelegram(FakeServer):
    """`POST /bot<token>/sendMessage`; 429s carry `parameters.retry_after`."""

    name = "telegram"

    def __init__(self, *, token: str = "123456:fake-bot-token", blocked_chats: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.token = token
        self.blocked = set(blocked_chats)
        self.reset_state()

    def reset_state(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.next_id = 1

    def error(self, status: int, retry_after: float | None) -> Any:
        if status == 429:
            seconds = int(retry_after or 1)
            return {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {seconds}",
                "parameters": {"retry_after": seconds},
            }
        return {
            "ok": False,
            "error_code": status,
            "description": "Internal Server Error" if status >= 500 else "Bad Request",
        }

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/bot{token}/sendMessage", self.send)]

    async def send(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("send", request)) is not None:
            return failure
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        body = await request.json()
        chat, text = str(body.get("chat_id", "")), body.get("text") or ""
        if chat in self.blocked:
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, status=403
            )
        if not chat or not text:
            reason = "Bad Request: message text is empty" if chat else "Bad Request: chat not found"
            return web.json_response({"ok": False, "error_code": 400, "description": reason}, status=400)
        with self.lock:
            message = {"message_id": self.next_id, "date": int(time.time()), "chat": {"id": chat}, "text": text}
            self.next_id += 1
            self.sent.append(message)
        return web.json_response({"ok": True, "result": message})
