-- pgvector (>= 0.5 for HNSW) holds CLIP embeddings.
-- pgcrypto is not needed: gen_random_uuid() is built in since PostgreSQL 13,
-- and token hashing happens in Python.
CREATE EXTENSION IF NOT EXISTS vector;
