-- Fee balance changes an engine reported without their amount (BALANCE_UPDATE changeType 'fee'
-- naming its trade in referenceId) whose trade was not stored yet: the trade's fee is charged
-- when it arrives, in its transaction (docs/FEES.md). `refused` says why a charge could not be
-- made then (the balance would go negative, the user is not the side that pays in the asset);
-- such a row stays for an operator.
CREATE TABLE pending_fee_charges (
    event_id    TEXT PRIMARY KEY,          -- the change's eventId, or its queue entry: balance_history.event_id
    user_id     TEXT NOT NULL REFERENCES users (id),
    asset       VARCHAR(10) NOT NULL,
    market      VARCHAR(20) NOT NULL,
    trade_id    TEXT NOT NULL,
    locked_change NUMERIC NOT NULL DEFAULT 0,
    description TEXT,
    occurred_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    refused     TEXT
);
CREATE INDEX idx_pending_fee_charges_trade ON pending_fee_charges (market, trade_id);
CREATE INDEX idx_pending_fee_charges_user ON pending_fee_charges (user_id);
