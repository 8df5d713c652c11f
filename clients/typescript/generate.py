"""Regenerate the TypeScript client from the API's OpenAPI document: `make client` (or run this file).

Writes openapi.json (the document the app serves, keys sorted) and src/schema.d.ts (openapi-typescript),
installing the npm packages first when node_modules is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
# the document does not depend on them, but Settings needs both to build the app
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
os.environ.setdefault("DATABASE_URL", "postgresql://unused@127.0.0.1:1/unused")


async def served_spec() -> dict[str, Any]:
    """The OpenAPI document exactly as the API serves it at /openapi.json."""
    from web.app import create_app

    response = await create_app().test_client().get("/openapi.json")
    return await response.get_json()  # type: ignore[no-any-return]


def spec_text(spec: dict[str, Any]) -> str:
    """The document as it is kept in the repository."""
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main() -> None:
    """Write openapi.json and src/schema.d.ts."""
    (HERE / "openapi.json").write_text(spec_text(asyncio.run(served_spec())))
    if not (HERE / "node_modules").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True)
    subprocess.run(
        ["npx", "--no-install", "openapi-typescript", "openapi.json", "-o", "src/schema.d.ts"], cwd=HERE, check=True
    )


if __name__ == "__main__":
    main()
