-- Stock reconciliation: what a stable item's count should be, so the nightly job can compare.

-- Which orders hold the items they claimed at checkout: those not given back (`restocked_at`),
-- except an order that let its items go (cancelled, or refunded before it shipped), which holds
-- nothing whether or not its restock ran: a restock that never happened then shows as stock
-- missing. A refunded order that had shipped keeps holding (the piece is gone).
CREATE FUNCTION order_holds_items(restocked_at timestamptz, status text, dispatched_at timestamptz)
    RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT restocked_at IS NULL AND NOT (status IN ('cancelled', 'refunded') AND dispatched_at IS NULL)
$$;

-- How many units of an item its orders hold (order_lines_item_idx finds its lines).
CREATE FUNCTION item_units_held(item bigint) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(l.quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id
    WHERE l.item_id = item AND order_holds_items(o.restocked_at, o.status, o.dispatched_at)
$$;

-- The starting stock: the count an item would have if no order held any of it. Orders' claims and
-- restocks move `stock` only; whoever sets the count from outside (an insert, the catalog) sets
-- this too, so that stock = stock_start - item_units_held(id) holds until something goes wrong.
ALTER TABLE items ADD COLUMN stock_start integer CHECK (stock_start >= 0);
CREATE FUNCTION items_stock_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.stock_start := coalesce(NEW.stock_start, NEW.stock);
    RETURN NEW;
END;
$$;
CREATE TRIGGER items_stock_start BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION items_stock_start();
UPDATE items SET stock_start = stock + item_units_held(id) WHERE stock IS NOT NULL;

-- The report of kept events (newest first) reads only the few that name no known order.
CREATE INDEX webhook_events_unmatched_idx ON webhook_events (id)
    WHERE unmatched_at IS NOT NULL AND processed_at IS NULL;
