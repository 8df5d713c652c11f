"""Similarity search (read-only): stylist matching, similar items, seed lookup. No inference here:
every vector was made by the embed actors, so the web process only averages and queries."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Blueprint, current_app
from quart_schema import document_response, tag, validate_querystring

from config.settings import get_settings
from db.item_search import select_nearest_items
from db.items import ItemCard, select_item_embedding, select_item_exists
from db.seeds import SeedCard, select_seed_embeddings, select_seeds
from web.auth import require
from web.bodies import validate_body
from web.errors import document_errors, problem
from web.schemas import TEXT, Id, Int

blueprint = Blueprint("search", __name__, url_prefix="/v1")
SLOT = r"^[a-z0-9_-]{1,50}$"


class StylistMatch(BaseModel):
    """1 to 7 style seeds whose centroid picks the nearest available items, optionally in one slot."""

    model_config = ConfigDict(extra="forbid")

    seed_ids: list[Id] = Field(min_length=1, max_length=7, json_schema_extra={"uniqueItems": True})
    slot: str | None = Field(None, pattern=SLOT, description="Only items of this stylist slot/category.")
    limit: Int = Field(20, ge=1, le=50)
    offset: Int = Field(0, ge=0, le=1000)

    @field_validator("seed_ids")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("seed ids must be distinct")
        return value


class Page(BaseModel):
    """Paging of a similarity query."""

    limit: int = Field(20, ge=1, le=50)
    offset: int = Field(0, ge=0, le=1000)


class SeedQuery(BaseModel):
    """Text search over seed labels and descriptions."""

    q: str | None = Field(None, max_length=100, pattern=TEXT)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=100_000)


class Matches(BaseModel):
    """A page of items, most similar first."""

    items: list[ItemCard]
    limit: int
    offset: int
    model: str


class Seeds(BaseModel):
    """A page of style seeds, by label."""

    seeds: list[SeedCard]


def _matches(cards: list[ItemCard], limit: int, offset: int, model: str) -> dict[str, Any]:
    return {"items": [card.model_dump() for card in cards], "limit": limit, "offset": offset, "model": model}


class Refused(Exception):
    """The query cannot be answered: `status` and the message say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _centroid(conn: Any, seed_ids: list[int]) -> tuple[np.ndarray, str]:
    seeds = await select_seed_embeddings(conn, seed_ids)
    missing = sorted(set(seed_ids) - {s.id for s in seeds})
    if missing:
        raise Refused(404, f"no such seed(s): {missing}")
    unembedded = [s.id for s in seeds if s.vector is None]
    if unembedded:
        raise Refused(409, f"seed(s) {unembedded} have no embedding yet (run `backroom embed sync`)")
    models = {s.model for s in seeds}
    if len(models) > 1:
        raise Refused(409, "the seeds were embedded by different models; re-embed them (embed sync --force)")
    # the mean of unit vectors points where their cosine centroid does (its length is irrelevant)
    vectors = [s.vector for s in seeds if s.vector is not None]
    return np.asarray(np.mean(vectors, axis=0, dtype=np.float32)), str(models.pop())


@blueprint.post("/stylist/match")
@require("jobs")
@tag(["search"])
@validate_body(StylistMatch)
@document_response(Matches)
@document_errors(404, 409)
async def post_stylist_match(data: StylistMatch) -> Any:
    """Available items nearest to the centroid of 1-7 style seeds, optionally in one slot."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        try:
            centroid, model = await _centroid(conn, data.seed_ids)
        except Refused as refused:
            return problem(refused.status, str(refused))
        cards = await select_nearest_items(
            conn,
            centroid,
            model=model,
            slot=data.slot,
            limit=data.limit,
            offset=data.offset,
            ef_search=get_settings().search_ef_search,
        )
    return _matches(cards, data.limit, data.offset, model)


@blueprint.get("/items/<id:item_id>/similar")
@require("jobs")
@tag(["search"])
@validate_querystring(Page)
@document_response(Matches)
@document_errors(409)
async def get_similar_items(item_id: int, query_args: Page) -> Any:
    """Available items most similar to this item (itself excluded)."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        found = await select_item_embedding(conn, item_id)
        if found is None:
            if await select_item_exists(conn, item_id):
                return problem(409, f"item {item_id} has no embedding yet")
            return problem(404, "no such item")
        vector, model = found
        cards = await select_nearest_items(
            conn,
            vector,
            model=model,
            exclude_ids=[item_id],
            limit=query_args.limit,
            offset=query_args.offset,
            ef_search=get_settings().search_ef_search,
        )
    return _matches(cards, query_args.limit, query_args.offset, model)


@blueprint.get("/seeds")
@require("jobs")
@tag(["search"])
@validate_querystring(SeedQuery)
@document_response(Seeds)
async def get_seeds(query_args: SeedQuery) -> Any:
    """Style seeds whose label or description contains `q` (all seeds without it)."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        seeds = await select_seeds(conn, q=query_args.q, limit=query_args.limit, offset=query_args.offset)
    return {"seeds": [seed.model_dump() for seed in seeds]}
