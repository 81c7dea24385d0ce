-- ML models and their predictions (docs/MODELS.md).
-- One active version per symbol and timeframe.
CREATE UNIQUE INDEX idx_ml_models_one_active ON ml_models (symbol, timeframe) WHERE is_active;
-- The market's close when the prediction was made: what its direction is measured from.
ALTER TABLE predictions ADD COLUMN base_value NUMERIC;
CREATE INDEX idx_predictions_pending ON predictions (prediction_timestamp) WHERE actual_value IS NULL;
