import { audit, AUDIT_COLUMNS, auditParams } from '../security/audit.ts';
import type { Database, Queryable } from '../database/types.ts';
import { CANDLE_INTERVALS } from '../ingest/apply/candles.ts';
import { TIMEFRAME_LENGTHS, TIMEFRAMES } from '../ingest/events/feeds.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';

/** Seed 003's ml_models: one row per version of a model for a symbol and timeframe. */
export interface Model {
  id: string;
  name: string;
  modelType: string;
  version: string;
  symbol: string;
  timeframe: string;
  features: unknown;
  hyperparameters: unknown;
  trainingDataStart: string | null;
  trainingDataEnd: string | null;
  validationScore: string | null;
  testScore: string | null;
  modelPath: string | null;
  isActive: boolean;
  createdAt: string;
}

export interface ModelInput {
  name: string;
  modelType: string;
  version: string;
  symbol: string;
  timeframe: string;
  features: unknown[] | Record<string, unknown>;
  hyperparameters?: Record<string, unknown> | null;
  trainingDataStart?: Date | null;
  trainingDataEnd?: Date | null;
  validationScore?: string | null;
  testScore?: string | null;
  modelPath?: string | null;
}

export interface Accuracy {
  modelId: string;
  from: string | null;
  to: string | null;
  /** Predictions in the window with an actual value. */
  predictions: number;
  /** Of which awaiting their actual value (the predicted moment not passed, or no candle yet). */
  pending: number;
  /** Mean absolute error, root mean squared error, mean absolute percentage error (actual ≠ 0). */
  mae: string | null;
  rmse: string | null;
  mape: string | null;
  /** The share of predictions whose direction (from the close when made) was right. */
  directionalAccuracy: string | null;
  /** Per confidence bucket [lower, lower + 0.1): count, mean confidence, directional accuracy. */
  calibration: { lower: string; upper: string; predictions: number; meanConfidence: string | null; directionalAccuracy: string | null }[];
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const COLUMNS = `id::text, name, model_type, version, symbol, timeframe, features, hyperparameters, training_data_start, training_data_end,
  validation_score::text, test_score::text, model_path, is_active, created_at`;
const toModel = (r: Record<string, unknown>): Model => ({
  id: r.id as string,
  name: r.name as string,
  modelType: r.model_type as string,
  version: r.version as string,
  symbol: r.symbol as string,
  timeframe: r.timeframe as string,
  features: r.features,
  hyperparameters: r.hyperparameters ?? null,
  trainingDataStart: iso(r.training_data_start as Date | null),
  trainingDataEnd: iso(r.training_data_end as Date | null),
  validationScore: r.validation_score as string | null,
  testScore: r.test_score as string | null,
  modelPath: r.model_path as string | null,
  isActive: r.is_active as boolean,
  createdAt: (r.created_at as Date).toISOString(),
});

/** The prediction types whose actual value tradestore fills in from the candles. */
export const BACKFILLED_TYPES = ['price', 'return', 'direction'] as const;

const LENGTHS: Record<string, string> = TIMEFRAME_LENGTHS;

/**
 * The close of `symbol` known at a moment in a timeframe: of the last candle that had finished
 * by then and finished within one candle of it (a venue market's stored candles, or an exchange
 * instrument's); NULL when there is none (a gap).
 */
function closeAt(timeframe: string, at: string): string {
  const length = `interval '${LENGTHS[timeframe]}'`;
  const venue = CANDLE_INTERVALS[timeframe as keyof typeof CANDLE_INTERVALS];
  const branches = [
    ...(venue ? [`SELECT close_price AS close, open_time AS t FROM ${venue.table} WHERE market = p.symbol AND open_time <= ${at} - ${length} AND open_time > ${at} - 2 * ${length}`] : []),
    `SELECT close, timestamp AS t FROM market_data WHERE symbol = p.symbol AND timeframe = '${timeframe}' AND timestamp <= ${at} - ${length} AND timestamp > ${at} - 2 * ${length}`,
  ];
  return `(SELECT c.close FROM (${branches.join(' UNION ALL ')}) c ORDER BY c.t DESC LIMIT 1)`;
}

/** The longest a prediction looks ahead that the backfill fills in (docs/MODELS.md). */
export const HORIZON_DAYS = 30;

/**
 * Fills in the actual value and error (actual − predicted) of the predictions whose moment has
 * passed within the last `days`, in bulk, from the stored candles of their model's timeframe:
 * `price` the close at the predicted moment; `return` that close over the close when the
 * prediction was made, less 1; `direction` the sign of the move (1, 0, −1). The close when it was
 * made is kept as its base. Returns how many were filled.
 */
export async function backfillPredictions(db: Queryable, now: Date, days = 7): Promise<number> {
  const { rows: timeframes } = await db.query<{ timeframe: string }>(
    `SELECT DISTINCT m.timeframe FROM predictions p JOIN ml_models m ON m.id = p.model_id
      WHERE p.actual_value IS NULL AND p.prediction_timestamp <= $1 AND p.prediction_timestamp > $1::timestamptz - $2 * interval '1 day'`,
    [now, days],
  );
  let filled = 0;
  for (const { timeframe } of timeframes) {
    if (!Object.hasOwn(LENGTHS, timeframe)) continue;
    const { rowCount } = await db.query(
      `UPDATE predictions p SET actual_value = a.actual, error = a.actual - p.predicted_value, base_value = a.base
         FROM (SELECT p.model_id, p.symbol, p.prediction_type, p.prediction_timestamp, p.timestamp, c.at_close, c.base,
                      CASE p.prediction_type WHEN 'price' THEN c.at_close
                                             WHEN 'return' THEN c.at_close / nullif(c.base, 0) - 1
                                             WHEN 'direction' THEN sign(c.at_close - c.base) END AS actual
                 FROM predictions p JOIN ml_models m ON m.id = p.model_id
                 CROSS JOIN LATERAL (SELECT ${closeAt(timeframe, 'p.prediction_timestamp')} AS at_close, ${closeAt(timeframe, 'p.timestamp')} AS base) c
                WHERE m.timeframe = $3 AND p.actual_value IS NULL AND p.prediction_type = ANY($4::text[])
                  AND p.prediction_timestamp <= $1 AND p.prediction_timestamp > $1::timestamptz - $2 * interval '1 day'
                  -- Made at most HORIZON_DAYS before their moment: the hypertable's older chunks are skipped.
                  AND p.timestamp > $1::timestamptz - ($2 + ${HORIZON_DAYS}) * interval '1 day') a
        WHERE p.model_id = a.model_id AND p.symbol = a.symbol AND p.prediction_type = a.prediction_type
          AND p.prediction_timestamp = a.prediction_timestamp AND p.timestamp = a.timestamp AND a.actual IS NOT NULL`,
      [now, days, timeframe, [...BACKFILLED_TYPES]],
    );
    filled += rowCount ?? 0;
  }
  return filled;
}

/** Seed 003's model registry and its predictions' accuracy (docs/MODELS.md). */
export class ModelRepository {
  constructor(private readonly db: Database) {}

  /** Registers a model version, inactive. */
  async register(input: ModelInput): Promise<Model> {
    const text = (field: keyof ModelInput, max: number) => {
      const v = input[field];
      if (typeof v !== 'string' || !v.trim() || v.length > max) throw new InvalidArgumentError(field, `must be 1 to ${max} characters`);
    };
    text('name', 100);
    text('modelType', 50);
    text('version', 20);
    if (typeof input.symbol !== 'string' || !/^[A-Za-z0-9_.\-/:]{1,50}$/.test(input.symbol)) throw new InvalidArgumentError('symbol', 'must be a market symbol');
    if (!TIMEFRAMES.includes(input.timeframe as never)) throw new InvalidArgumentError('timeframe', `must be one of ${TIMEFRAMES.join(', ')}`);
    if (typeof input.features !== 'object' || input.features === null) throw new InvalidArgumentError('features', 'must be a JSON list or object');
    for (const field of ['validationScore', 'testScore'] as const) {
      const v = input[field];
      if (v !== undefined && v !== null && !/^-?\d{1,20}(\.\d{1,18})?$/.test(v)) throw new InvalidArgumentError(field, 'must be a decimal string');
    }
    if (input.trainingDataStart && input.trainingDataEnd && input.trainingDataStart > input.trainingDataEnd) throw new InvalidArgumentError('trainingDataEnd', 'must not be before trainingDataStart');
    const change = auditParams({ action: 'model.register', resourceType: 'model', resourceId: null, userId: null, new: { name: input.name, modelType: input.modelType, version: input.version, symbol: input.symbol, timeframe: input.timeframe } });
    const { rows } = await this.db.query<{ id: string }>(
      // The model and its audit row in one statement (one transaction).
      `WITH m AS (INSERT INTO ml_models (name, model_type, version, symbol, timeframe, features, hyperparameters, training_data_start, training_data_end,
                              validation_score, test_score, model_path)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id),
            a AS (INSERT INTO audit_log (${AUDIT_COLUMNS}) SELECT $13, $14, $15, coalesce($16::text, m.id::text), $17::jsonb, $18::jsonb, $19::inet, $20, $21 FROM m)
       SELECT id::text FROM m`,
      [input.name, input.modelType, input.version, input.symbol, input.timeframe, JSON.stringify(input.features),
        input.hyperparameters ? JSON.stringify(input.hyperparameters) : null, input.trainingDataStart ?? null, input.trainingDataEnd ?? null,
        input.validationScore ?? null, input.testScore ?? null, input.modelPath ?? null, ...change],
    ).catch((error: { code?: string }) => {
      if (error.code === '23505') throw new InvalidArgumentError('version', `${input.name} ${input.version} for ${input.symbol} ${input.timeframe} is registered already`);
      throw error;
    });
    return this.get(rows[0]!.id);
  }

  async get(id: string): Promise<Model> {
    if (!/^[1-9]\d{0,17}$/.test(id)) throw new NotFoundError('model', id);
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM ml_models WHERE id = $1::bigint`, [id]);
    if (!rows[0]) throw new NotFoundError('model', id);
    return toModel(rows[0]);
  }

  /** Models, newest first: of a symbol or timeframe, or only the active ones. */
  async list(filters: { symbol?: string; timeframe?: string; name?: string; active?: boolean } = {}): Promise<Model[]> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS} FROM ml_models
        WHERE ($1::text IS NULL OR symbol = $1) AND ($2::text IS NULL OR timeframe = $2) AND ($3::text IS NULL OR name = $3) AND (NOT $4 OR is_active)
        ORDER BY created_at DESC, id DESC LIMIT 1000`,
      [filters.symbol ?? null, filters.timeframe ?? null, filters.name ?? null, filters.active ?? false],
    );
    return rows.map(toModel);
  }

  /** Makes a version the active one of its symbol and timeframe; the one active before is deactivated. */
  async activate(id: string): Promise<Model> {
    const model = await this.get(id);
    await this.db.transaction(async (tx) => {
      // Serializes activations of one symbol and timeframe (the partial unique index enforces one active).
      await tx.query(`SELECT id FROM ml_models WHERE symbol = $1 AND timeframe = $2 ORDER BY id FOR UPDATE`, [model.symbol, model.timeframe]);
      const { rows: before } = await tx.query<{ id: string }>(`SELECT id::text FROM ml_models WHERE symbol = $1 AND timeframe = $2 AND is_active`, [model.symbol, model.timeframe]);
      await tx.query(`UPDATE ml_models SET is_active = false, updated_at = now() WHERE symbol = $1 AND timeframe = $2 AND is_active AND id <> $3::bigint`, [model.symbol, model.timeframe, id]);
      await tx.query(`UPDATE ml_models SET is_active = true, updated_at = now() WHERE id = $1::bigint`, [id]);
      await audit(tx, { action: 'model.activate', resourceType: 'model', resourceId: id, userId: null, old: { active: before.map((r) => r.id) }, new: { active: [id], symbol: model.symbol, timeframe: model.timeframe } });
    });
    return this.get(id);
  }

  async deactivate(id: string): Promise<Model> {
    const model = await this.get(id);
    await this.db.transaction(async (tx) => {
      await tx.query(`UPDATE ml_models SET is_active = false, updated_at = now() WHERE id = $1::bigint`, [id]);
      await audit(tx, { action: 'model.deactivate', resourceType: 'model', resourceId: id, userId: null, old: { isActive: model.isActive }, new: { isActive: false } });
    });
    return this.get(id);
  }

  /** Fills in the predictions' actual values from the candles now (the maintenance job does it every 5 minutes). */
  async backfill(now = new Date()): Promise<number> {
    return backfillPredictions(this.db, now);
  }

  /**
   * The accuracy of a model version's predictions made in [from, to) that have an actual value:
   * MAE, RMSE, MAPE, directional accuracy, and the calibration of their confidence.
   */
  async accuracy(id: string, range: { from?: Date; to?: Date } = {}): Promise<Accuracy> {
    await this.get(id);
    if (range.from && range.to && range.from > range.to) throw new InvalidArgumentError('from', 'must not be after to');
    const window = `model_id = $1::bigint AND ($2::timestamptz IS NULL OR timestamp >= $2) AND ($3::timestamptz IS NULL OR timestamp < $3)`;
    // Right direction: of the move from the close when made, for price; of the value itself, for return and direction.
    const hit = `CASE WHEN prediction_type = 'price' THEN (CASE WHEN base_value IS NULL THEN NULL ELSE sign(predicted_value - base_value) = sign(actual_value - base_value) END)
                      ELSE sign(predicted_value) = sign(actual_value) END`;
    const params = [id, range.from ?? null, range.to ?? null];
    const { rows } = await this.db.query<{ n: number; pending: number; mae: string | null; rmse: string | null; mape: string | null; directional: string | null }>(
      `SELECT count(*) FILTER (WHERE actual_value IS NOT NULL)::int AS n, count(*) FILTER (WHERE actual_value IS NULL)::int AS pending,
              avg(abs(error))::text AS mae, sqrt(avg(error * error))::text AS rmse,
              (avg(abs(error) / abs(actual_value)) FILTER (WHERE actual_value <> 0) * 100)::text AS mape,
              avg((${hit})::int)::text AS directional
         FROM predictions WHERE ${window}`,
      params,
    );
    const { rows: buckets } = await this.db.query<{ bucket: number; n: number; confidence: string | null; directional: string | null }>(
      `SELECT least(floor(confidence * 10), 9)::int AS bucket, count(*)::int AS n, avg(confidence)::text AS confidence, avg((${hit})::int)::text AS directional
         FROM predictions WHERE ${window} AND actual_value IS NOT NULL AND confidence IS NOT NULL GROUP BY 1 ORDER BY 1`,
      params,
    );
    const r = rows[0]!;
    return {
      modelId: id,
      from: iso(range.from ?? null),
      to: iso(range.to ?? null),
      predictions: Number(r.n),
      pending: Number(r.pending),
      mae: r.mae,
      rmse: r.rmse,
      mape: r.mape,
      directionalAccuracy: r.directional,
      calibration: buckets.map((b) => ({
        lower: (b.bucket / 10).toFixed(1),
        upper: ((b.bucket + 1) / 10).toFixed(1),
        predictions: Number(b.n),
        meanConfidence: b.confidence,
        directionalAccuracy: b.directional,
      })),
    };
  }
}
