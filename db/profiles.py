"""Profiles: the storefront's customers, as far as memberships need them."""

from __future__ import annotations

import asyncpg


async def upsert_membership(conn: asyncpg.Connection, email: str, *, stripe_customer: str | None) -> int:
    """Make the profile with `email` a Society member (creating it if needed); returns its id."""
    return await conn.fetchval(
        """
        INSERT INTO profiles (email, membership_tier, stripe_customer, member_since)
        VALUES (lower($1), 'society', $2, now())
        ON CONFLICT (email) DO UPDATE SET membership_tier = 'society',
            stripe_customer = coalesce(EXCLUDED.stripe_customer, profiles.stripe_customer),
            member_since = coalesce(profiles.member_since, now())
        RETURNING id
        """,
        email,
        stripe_customer,
    )


async def select_membership_tier(conn: asyncpg.Connection, email: str) -> str | None:
    """The tier of the profile with `email`, or None when there is none."""
    return await conn.fetchval("SELECT membership_tier FROM profiles WHERE email = lower($1)", email)
