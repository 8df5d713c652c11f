"""Curated collections (read-only): the current generation of a surface, or one collection, served from the DB.

Availability is live: items sold or archived since the generation ran are left out (their count
stays in `item_count`), unless `include_unavailable=true` shows them with their current status.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, current_app
from quart_schema import document_response, tag, validate_querystring

from db.collections import CollectionView, select_collection, select_surface_collections
from domain.collections import SURFACE
from web.auth import require
from web.errors import problem
from web.search import ItemOut

blueprint = Blueprint("collections", __name__, url_prefix="/v1")


class SurfaceQuery(BaseModel):
    """Which surface, and whether items no longer available are shown (with their live status)."""

    surface: str = Field(pattern=SURFACE.pattern)
    include_unavailable: bool = False


class CollectionQuery(BaseModel):
    """Whether items no longer available are shown (with their live status)."""

    include_unavailable: bool = False


class CollectionOut(BaseModel):
    """A curated collection; items carry our media keys only, never marketplace URLs."""

    id: int
    surface: str
    title: str | None
    description: str | None
    seed_id: int | None
    generation: str
    current: bool = Field(description="True while this collection belongs to its surface's current generation.")
    valid_from: datetime
    valid_until: datetime | None
    item_count: int = Field(description="Items picked at generation time (available or not now).")
    items: list[ItemOut]


class SurfaceOut(BaseModel):
    """The current generation of a surface."""

    surface: str
    generation: str | None
    generated_at: datetime | None
    collections: list[CollectionOut]


def _json(model: BaseModel) -> Any:
    # pydantic writes ISO 8601 datetimes (Quart's own encoder would write HTTP dates)
    return current_app.response_class(model.model_dump_json(), mimetype="application/json")


def _collection(view: CollectionView) -> CollectionOut:
    return CollectionOut.model_validate(asdict(view))


@blueprint.get("/collections")
@require("jobs")
@tag(["collections"])
@validate_querystring(SurfaceQuery)
@document_response(SurfaceOut)
async def get_collections(query_args: SurfaceQuery) -> Any:
    """The surface's current, valid collections with their available items (an empty list before the first run)."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        view = await select_surface_collections(
            conn, query_args.surface, include_unavailable=query_args.include_unavailable
        )
    if view is None:
        return _json(SurfaceOut(surface=query_args.surface, generation=None, generated_at=None, collections=[]))
    return _json(
        SurfaceOut(
            surface=view.surface,
            generation=view.generation,
            generated_at=view.generated_at,
            collections=[_collection(c) for c in view.collections],
        )
    )


@blueprint.get("/collections/<id:collection_id>")
@require("jobs")
@tag(["collections"])
@validate_querystring(CollectionQuery)
@document_response(CollectionOut)
async def get_collection(collection_id: int, query_args: CollectionQuery) -> Any:
    """One collection (of the current or a kept older generation) with its available items."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        view = await select_collection(conn, collection_id, include_unavailable=query_args.include_unavailable)
    if view is None:
        return problem(404, "no such collection")
    return _json(_collection(view))
