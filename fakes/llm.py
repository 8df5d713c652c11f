"""A fake OpenAI-compatible chat-completions server: the real wire shape, with switchable failures.

`POST /v1/chat/completions` checks the bearer key and the request (messages, a strict
json_schema `response_format` in the subset OpenAI accepts), and answers a chat.completion
whose `choices[0].message.content` is JSON that fits the schema, with `finish_reason` and
`usage`. Failures: HTTP ones through `fail_next("chat", 429, retry_after=1)` (OpenAI's error
shape), and bad answers through `malformed_next()`, `cut_off_next()` and `refuse_next()`.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections import deque
from typing import Any

from aiohttp import web

from fakes.base import FakeServer

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


class FakeLlm(FakeServer):
    """One model server; `requests` holds every accepted request body, `answers` what was answered."""

    name = "llm"

    def __init__(self, *, api_key: str = "sk-fake-llm") -> None:
        super().__init__()
        self.api_key = api_key
        self.reset_state()

    def reset_state(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.modes: deque[str] = deque()
        self.usage: tuple[int, int] | None = None  # fixed (prompt, completion) tokens, else estimated

    # --- switches (called from tests) ---
    def malformed_next(self, times: int = 1) -> None:
        """The next answers carry content that is not JSON (finish_reason stop)."""
        self._queue("malformed", times)

    def cut_off_next(self, times: int = 1) -> None:
        """The next answers stop at max_tokens: truncated JSON, finish_reason length."""
        self._queue("length", times)

    def refuse_next(self, times: int = 1) -> None:
        """The next answers are refusals (message.refusal set, content null)."""
        self._queue("refusal", times)

    def set_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Report these token counts on every answer (to drive costs exactly)."""
        with self.lock:
            self.usage = (prompt_tokens, completion_tokens)

    def _queue(self, mode: str, times: int) -> None:
        with self.lock:
            self.modes.extend([mode] * times)

    @property
    def base(self) -> str:
        """What LLM_BASE_URL should be."""
        return f"{self.base_url}/v1"

    def error(self, status: int, retry_after: float | None) -> Any:
        kind, code = _ERRORS.get(status, ("invalid_request_error" if status < 500 else "server_error", None))
        message = (
            "Rate limit reached for requests"
            if status == 429
            else "The server had an error while processing your request."
            if status >= 500
            else "Bad request"
        )
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self.chat)]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("chat", request)) is not None:
            return failure
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._reject(401, "Incorrect API key provided.")
        try:
            body = await request.json()
        except ValueError:
            return self._reject(400, "We could not parse the JSON body of your request.")
        problem = _check_request(body)
        if problem:
            return self._reject(400, problem)
        with self.lock:
            self.requests.append(body)
            mode = self.modes.popleft() if self.modes else "ok"
            usage = self.usage
        answer = _answer(body, mode, usage)
        with self.lock:
            self.answers.append(answer)
        return web.json_response(answer, headers={"x-request-id": f"req_{secrets.token_hex(12)}"})

    def _reject(self, status: int, message: str) -> web.Response:
        body = self.error(status, None)
        body["error"]["message"] = message
        return web.json_response(body, status=status)


def _check_request(body: Any) -> str | None:
    """Why OpenAI would answer 400 to this body (in the subset the fake checks), or None."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant", "developer")
            and isinstance(m.get("content"), str)
            for m in messages
        )
    ):
        return "'messages' must be a non-empty array of {role, content}"
    fmt = body.get("response_format") or {"type": "text"}
    if fmt.get("type") == "json_object":
        if not any("json" in m["content"].lower() for m in messages):
            return (
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
            )
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        if not _NAME.match(str(spec.get("name", ""))):
            return "Invalid 'response_format.json_schema.name'"
        if spec.get("strict") is True:
            return _strict_problem(spec.get("schema") or {}, "schema")
    return None


def _strict_problem(schema: dict[str, Any], where: str) -> str | None:
    if schema.get("type") == "object":
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return f"Invalid schema for response_format: In context={where}, 'additionalProperties' must be false"
        if sorted(schema.get("required") or []) != sorted(props):
            return f"Invalid schema for response_format: In context={where}, 'required' must list every property"
        return next((p for name, sub in props.items() if (p := _strict_problem(sub, f"{where}.{name}"))), None)
    if schema.get("type") == "array":
        return _strict_problem(schema.get("items") or {}, f"{where}.items")
    return None


def _content(body: dict[str, Any]) -> dict[str, Any]:
    """An answer that fits the request's schema (or, in json_object mode, the allowed lists in the prompt)."""
    facts = _facts(body)
    fmt = body.get("response_format") or {}
    props = ((fmt.get("json_schema") or {}).get("schema") or {}).get("properties") or {}
    tags = (props.get("tags") or {}).get("items", {}).get("enum") or facts.get("allowed_tags") or []
    occasions = (props.get("occasion_fit") or {}).get("items", {}).get("enum") or facts.get("allowed_occasions") or []
    hinted = [t for t in facts.get("image_model_tags") or [] if t in tags] or tags[:1]
    title = facts.get("title") or "this piece"
    brand = f" by {facts['brand']}" if facts.get("brand") else ""
    return {
        "description": f"{title}{brand}: a considered piece for a curated wardrobe.",
        "tags": hinted[:3],
        "occasion_fit": occasions[:2],
    }


def _facts(body: dict[str, Any]) -> dict[str, Any]:
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            try:
                value = json.loads(message["content"])
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def _answer(body: dict[str, Any], mode: str, usage: tuple[int, int] | None) -> dict[str, Any]:
    text = json.dumps(_content(body))
    content: str | None = text
    refusal, finish = None, "stop"
    if mode == "malformed":
        content = "Sure! Here is the JSON you asked for: {description: " + text[:20]
    elif mode == "length":
        content, finish = text[: max(1, len(text) // 2)], "length"
    elif mode == "refusal":
        content, refusal = None, "I'm sorry, I can't help with that."
    prompt = math.ceil(sum(len(m["content"]) for m in body["messages"]) / 4)
    if mode == "length":
        completion = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
    else:
        completion = math.ceil(len(content or refusal or "") / 4)
    if usage is not None:
        prompt, completion = usage
    return {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{body['model']}-2024-07-18",
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }
