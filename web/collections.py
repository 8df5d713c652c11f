"""Curated collections (read-only): the current generation of a surface, or one collection, served from the DB.

Availability is live: items sold or archived since the generation ran are left out (their count
stays in `item_count`), unless `include_unavailable=true` shows them with their current status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, current_app
from quart_schema import document_response, tag, validate_querystring

from db.collections import CollectionView, select_collection, select_surface_collections
from domain.collections import SURFACE
from web.auth import require
from web.errors import problem
from web.schemas import reply

blueprint = Blueprint("collections", __name__, url_prefix="/v1")


class SurfaceQuery(BaseModel):
    """Which surface, and whether items no longer available are shown (with their live status)."""

    surface: str = Field(pattern=SURFACE.pattern)
    include_unavailable: bool = False


class CollectionQuery(BaseModel):
    """Whether items no longer available are shown (with their live status)."""

    include_unavailable: bool = False


class SurfaceOut(BaseModel):
    """The current generation of a surface."""

    surface: str
    generation: str | None
    generated_at: datetime | None
    collections: list[CollectionView]


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
        return reply(SurfaceOut(surface=query_args.surface, generation=None, generated_at=None, collections=[]))
    return reply(
        SurfaceOut(
            surface=view.surface,
            generation=view.generation,
            generated_at=view.generated_at,
            collections=list(view.collections),
        )
    )


@blueprint.get("/collections/<id:collection_id>")
@require("jobs")
@tag(["collections"])
@validate_querystring(CollectionQuery)
@document_response(CollectionView)
async def get_collection(collection_id: int, query_args: CollectionQuery) -> Any:
    """One collection (of the current or a kept older generation) with its available items."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        view = await select_collection(conn, collection_id, include_unavailable=query_args.include_unavailable)
    if view is None:
        return problem(404, "no such collection")
    return reply(view)
