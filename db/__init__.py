"""Data access on asyncpg: the pool, the migration runner, one module per table family."""
