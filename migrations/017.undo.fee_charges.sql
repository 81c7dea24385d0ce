DROP TABLE IF EXISTS pending_fee_charges;
