"""clients/typescript/openapi.json is the document the API serves (`make client` regenerates it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ts_generate", CLIENT / "generate.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


async def test_the_typescript_client_matches_the_served_spec(client) -> None:
    served = await (await client.get("/openapi.json")).get_json()
    kept = (CLIENT / "openapi.json").read_text()
    assert _generator().spec_text(served) == kept, "the API changed: run `make client` and commit the result"
