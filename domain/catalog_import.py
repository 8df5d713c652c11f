"""Reading a catalog file for the first load: JSON Lines of product.changed bodies, or CSV one row per variant."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from domain.catalog import ProductChanged

CSV_COLUMNS = (
    "payload_product_id",
    "title",
    "brand",
    "status",
    "price_cents",
    "currency",
    "stock",
    "variant_id",
    "sku",
    "image_url",
    "description",
    "ts",
)
MAX_LINE = 1_000_000


@dataclass(frozen=True)
class LineError:
    """Why one line (1-based) could not be read."""

    line: int
    error: str


def _why(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in error.errors()[:5])
    return str(error)[:300]


def read_jsonl(lines: Iterable[str]) -> tuple[list[ProductChanged], list[LineError]]:
    """Each non-empty line a product.changed body."""
    products, errors = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_LINE:
                raise ValueError(f"longer than {MAX_LINE} characters")
            products.append(ProductChanged.model_validate(json.loads(line)))
        except ValueError as error:
            errors.append(LineError(number, _why(error)))
    return products, errors


def _variant(row: dict[str, str]) -> dict[str, object]:
    return {
        "payloadVariantId": row["variant_id"],
        "sku": row.get("sku") or None,
        "price": int(row["price_cents"]) if row.get("price_cents") else None,
        "currency": row.get("currency") or None,
        "stock": int(row["stock"]) if row.get("stock") else None,
    }


def read_csv(text: str) -> tuple[list[ProductChanged], list[LineError]]:
    """One row per variant (CSV_COLUMNS; variant_id empty = a product without variants), grouped by product."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("payload_product_id", "title", "ts") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [LineError(1, f"missing column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}")]
    bodies: dict[str, tuple[int, dict[str, Any]]] = {}
    errors = []
    for number, row in enumerate(reader, 2):
        try:
            pid = row["payload_product_id"]
            first, body = bodies.setdefault(
                pid,
                (
                    number,
                    {
                        "payloadProductId": pid,
                        "ts": row["ts"],
                        "brand": {"payloadBrandId": row["brand"], "name": row["brand"]} if row.get("brand") else None,
                        "product": {
                            "title": row["title"],
                            "status": row.get("status") or "published",
                            "shortDescription": row.get("description") or None,
                            "primaryImageUrl": row.get("image_url") or None,
                            "defaultPrice": int(row["price_cents"]) if row.get("price_cents") else None,
                            "defaultCurrency": row.get("currency") or None,
                        },
                        "variants": [],
                    },
                ),
            )
            if row.get("variant_id"):
                body["variants"].append(_variant(row))
        except (ValueError, KeyError) as error:
            errors.append(LineError(number, _why(error)))
    products = []
    for first, body in bodies.values():
        try:
            products.append(ProductChanged.model_validate(body))
        except ValidationError as error:
            errors.append(LineError(first, _why(error)))
    return products, errors
