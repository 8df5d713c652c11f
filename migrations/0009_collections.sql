-- Curated collections: each run of the generator is a generation; one pointer per surface names
-- the generation readers see. A new generation is inserted and the pointer moved in one
-- transaction, so a reader sees the whole old surface or the whole new one, never a mix or none.

CREATE TABLE collection_generations (
    generation   uuid PRIMARY KEY,
    surface      text NOT NULL,
    method       text NOT NULL CHECK (method IN ('seeds', 'clusters', 'legacy')),
    model        text,
    -- when the generator read its candidates: an older run finishing late never replaces a newer one
    generated_at timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX collection_generations_surface_idx ON collection_generations (surface, generated_at DESC);

-- rows written before this migration (none are expected) become one legacy generation each
INSERT INTO collection_generations (generation, surface, method, generated_at)
SELECT DISTINCT ON (generation) generation, surface, 'legacy', created_at
FROM collections ORDER BY generation, created_at;

ALTER TABLE collections
    ADD CONSTRAINT collections_generation_fk
        FOREIGN KEY (generation) REFERENCES collection_generations (generation) ON DELETE CASCADE,
    ADD COLUMN position integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    ADD COLUMN seed_id  bigint REFERENCES style_seeds (id) ON DELETE SET NULL;

-- no cascade: the generation a surface points at cannot be deleted by a cleanup
CREATE TABLE collection_surfaces (
    surface      text PRIMARY KEY,
    generation   uuid NOT NULL REFERENCES collection_generations (generation),
    generated_at timestamptz NOT NULL,
    swapped_at   timestamptz NOT NULL DEFAULT now()
);
