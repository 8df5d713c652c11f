-- Embeddings: seeds record when and why their embedding was (not) made, like items do;
-- slot-filtered similarity search finds its candidates without touching the vectors.

ALTER TABLE style_seeds
    ADD COLUMN embedded_at timestamptz,
    ADD COLUMN embed_error text;

-- the stylist filters available items by slot; a selective slot is scanned exactly from here
CREATE INDEX items_available_slot_idx ON items (slot, embedding_model) WHERE status = 'available';
-- the embedding fan-out walks items by id among those embedded with another model
CREATE INDEX items_embedding_model_idx ON items (embedding_model, id);
