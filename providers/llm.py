"""An OpenAI-compatible chat-completions client: one JSON answer per call, with its usage.

`POST {LLM_BASE_URL}/chat/completions` (the base includes `/v1` as OpenAI's does). A
non-2xx answer becomes the shared provider errors (429 -> RateLimited with Retry-After,
408/5xx -> Retryable, other 4xx -> Permanent); a 200 whose body is not the chat-completion
shape is BadReply. Whether the content is usable (finish_reason, JSON, schema) is judged
by the caller, so a cut-off or malformed answer still reports its usage for the cost log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from providers.errors import Permanent
from providers.http import CONNECT_TIMEOUT_S, Reply, raise_for, request

NAME = "llm"


class BadReply(Permanent):
    """A 2xx whose body is not a chat completion (no choices, no message): retrying will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(NAME, reason)


@dataclass(frozen=True)
class Completion:
    """The first choice of a chat completion, and what it cost in tokens."""

    content: str | None
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str | None
    request_id: str | None


@dataclass
class ChatClient:
    """Chat completions against one OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, ...)."""

    session: aiohttp.ClientSession
    base_url: str
    api_key: str
    model: str
    max_tokens: int = 500
    timeout_s: float = 60.0
    name: str = NAME

    async def complete(
        self, messages: Sequence[Mapping[str, str]], response_format: Mapping[str, Any], *, seed: int | None = None
    ) -> Completion:
        """Ask once (temperature 0); the reply's first choice and usage."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "response_format": dict(response_format),
        }
        if seed is not None:
            body["seed"] = seed
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        reply = await request(
            self.session,
            NAME,
            "POST",
            f"{self.base_url.rstrip('/')}/chat/completions",
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_S, sock_read=self.timeout_s),
        )
        raise_for(NAME, reply, _error_text(reply))
        return parse_completion(reply)


def parse_completion(reply: Reply) -> Completion:
    """The first choice, its finish reason and the usage of a 2xx reply; BadReply when it is not one."""
    choices = reply.field("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise BadReply("the reply has no choices")
    message = choices[0].get("message")
    if not isinstance(message, Mapping):
        raise BadReply("the first choice has no message")
    content = message.get("content")
    usage = reply.field("usage") if isinstance(reply.field("usage"), Mapping) else {}
    return Completion(
        content=content if isinstance(content, str) else None,
        finish_reason=choices[0].get("finish_reason"),
        refusal=message.get("refusal") or None,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        model=reply.field("model"),
        request_id=next((v for k, v in reply.headers.items() if k.lower() == "x-request-id"), None)
        or reply.field("id"),
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _error_text(reply: Reply) -> str:
    message = reply.field("error", "message") if isinstance(reply.field("error"), Mapping) else reply.field("error")
    return str(message or "error")[:300]
