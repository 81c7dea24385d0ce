DROP INDEX IF EXISTS idx_predictions_pending;
ALTER TABLE predictions DROP COLUMN IF EXISTS base_value;
DROP INDEX IF EXISTS idx_ml_models_one_active;
