import { audit } from '../security/audit.ts';
import type { Database } from '../database/types.ts';
import { CACHE_GROUPS, type Cache } from '../cache/cache.ts';
import { emptyEffects } from '../ingest/apply/types.ts';
import { evaluateRisk, RISK_KINDS, type RaisedRiskEvent, type RiskLevel } from '../ingest/apply/risk.ts';
import { publishEffects } from '../ingest/publish.ts';
import type { Bus } from '../bus/types.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';

export interface RiskLimit {
  id: string;
  userId: string;
  limitType: string;
  symbol: string | null;
  strategyId: string | null;
  limitValue: string;
  currentValue: string;
  warningRatio: string;
  action: string;
  level: RiskLevel;
  /** `limit`: set through tradestore; `account`: the user's own (users.max_position_size, max_daily_loss). */
  source: string;
  isActive: boolean;
  /** Whether tradestore measures it from the data (RISK_KINDS); other types are kept for engines. */
  measured: boolean;
  evaluatedAt: string | null;
  updatedAt: string;
}

export interface RiskEvent {
  id: string;
  userId: string | null;
  eventType: string;
  severity: string;
  symbol: string | null;
  strategyId: string | null;
  limitId: string | null;
  description: string | null;
  riskValue: string | null;
  limitValue: string | null;
  actionTaken: string | null;
  triggeredAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
}

export interface RiskLimitInput {
  userId: string;
  limitType: string;
  limitValue: string;
  symbol?: string | null;
  strategyId?: string | null;
  warningRatio?: string;
  action?: string;
  isActive?: boolean;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const LIMIT_COLUMNS = `id::text, user_id, limit_type, symbol, strategy_id, limit_value::text, current_value::text, warning_ratio::text, action, level, source,
  is_active, evaluated_at, updated_at`;

const toLimit = (r: Record<string, unknown>): RiskLimit => ({
  id: r.id as string,
  userId: r.user_id as string,
  limitType: r.limit_type as string,
  symbol: r.symbol as string | null,
  strategyId: r.strategy_id as string | null,
  limitValue: r.limit_value as string,
  currentValue: r.current_value as string,
  warningRatio: r.warning_ratio as string,
  action: r.action as string,
  level: r.level as RiskLevel,
  source: r.source as string,
  isActive: r.is_active as boolean,
  measured: (r.limit_type as string) in RISK_KINDS,
  evaluatedAt: iso(r.evaluated_at as Date | null),
  updatedAt: (r.updated_at as Date).toISOString(),
});

const toEvent = (r: Record<string, unknown>): RiskEvent => ({
  id: r.id as string,
  userId: r.user_id as string | null,
  eventType: r.event_type as string,
  severity: r.severity as string,
  symbol: r.symbol as string | null,
  strategyId: r.strategy_id as string | null,
  limitId: r.limit_id as string | null,
  description: r.description as string | null,
  riskValue: r.risk_value as string | null,
  limitValue: r.limit_value as string | null,
  actionTaken: r.action_taken as string | null,
  triggeredAt: (r.triggered_at as Date).toISOString(),
  acknowledgedAt: iso(r.acknowledged_at as Date | null),
  acknowledgedBy: r.acknowledged_by as string | null,
  resolvedAt: iso(r.resolved_at as Date | null),
  resolvedBy: r.resolved_by as string | null,
});

const EVENT_COLUMNS = `id::text, user_id, event_type, severity, symbol, strategy_id, limit_id::text, description, risk_value::text, limit_value::text,
  action_taken, triggered_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by`;
const decimalText = /^\d{1,20}(\.\d{1,18})?$/;

/**
 * Seeds 001 and 003's risk limits and risk events (docs/RISK.md): limits per user, strategy and
 * symbol, evaluated by ingest as data arrives; a user's limits are cached under seed 001's
 * `risk_limits:{user_id}` and dropped on every change.
 */
/** What a person set on a limit (not the measured value, which moves with the data). */
const settings = (l: RiskLimit) => ({ limitType: l.limitType, symbol: l.symbol, strategyId: l.strategyId, limitValue: l.limitValue, warningRatio: l.warningRatio, action: l.action, isActive: l.isActive });

export class RiskRepository {
  constructor(
    private readonly db: Database,
    private readonly cache: Cache,
    private readonly bus: Bus,
  ) {}

  /** A user's limits (cached for a minute, dropped on change). */
  async limits(userId: string): Promise<RiskLimit[]> {
    return this.cache.read(CACHE_GROUPS.riskLimits(userId), '', 60_000, async () => {
      const { rows } = await this.db.query(`SELECT ${LIMIT_COLUMNS} FROM risk_limits WHERE user_id = $1 ORDER BY limit_type, symbol NULLS FIRST, strategy_id NULLS FIRST, id`, [userId]);
      return rows.map(toLimit);
    });
  }

  /** Every limit, or those of one type or level (for an operator). */
  async allLimits(filters: { level?: RiskLevel } = {}): Promise<RiskLimit[]> {
    const { rows } = await this.db.query(`SELECT ${LIMIT_COLUMNS} FROM risk_limits WHERE $1::text IS NULL OR level = $1 ORDER BY user_id, limit_type, id LIMIT 1000`, [filters.level ?? null]);
    return rows.map(toLimit);
  }

  /**
   * Sets a limit of a scope (user, type, symbol, strategy): creates it, or changes its value,
   * warning ratio, action or activity. It is evaluated at once, and may raise an event.
   */
  async setLimit(input: RiskLimitInput): Promise<RiskLimit> {
    if (typeof input.limitType !== 'string' || !/^[a-z][a-z0-9_]{0,49}$/.test(input.limitType)) throw new InvalidArgumentError('limitType', `must be a name such as ${Object.keys(RISK_KINDS).join(', ')}`);
    if (!decimalText.test(String(input.limitValue))) throw new InvalidArgumentError('limitValue', 'must be a decimal string, 0 or more');
    if (input.warningRatio !== undefined && (!decimalText.test(input.warningRatio) || !(Number(input.warningRatio) > 0 && Number(input.warningRatio) <= 1))) {
      throw new InvalidArgumentError('warningRatio', 'must be a fraction above 0 and at most 1, such as 0.8');
    }
    if (input.limitType === 'min_balance' && !input.symbol) throw new InvalidArgumentError('symbol', 'a min_balance limit names its asset as the symbol');
    if (input.action !== undefined && (typeof input.action !== 'string' || !input.action.trim() || input.action.length > 100)) throw new InvalidArgumentError('action', 'must be 1 to 100 characters');
    const id = await this.db.transaction(async (tx) => {
      // One change of a scope at a time, so the value read before is the one this change replaces.
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('tradestore:risk-limit:' || $1 || ':' || $2 || ':' || coalesce($3, '') || ':' || coalesce($4, ''), 0))`,
        [input.userId, input.limitType, input.symbol ?? null, input.strategyId ?? null]);
      const { rows: before } = await tx.query(
        `SELECT ${LIMIT_COLUMNS} FROM risk_limits WHERE user_id = $1 AND limit_type = $2 AND symbol IS NOT DISTINCT FROM $3 AND strategy_id IS NOT DISTINCT FROM $4 FOR UPDATE`,
        [input.userId, input.limitType, input.symbol ?? null, input.strategyId ?? null],
      );
      const { rows } = await tx.query<Record<string, unknown>>(
        `INSERT INTO risk_limits (user_id, limit_type, symbol, strategy_id, limit_value, warning_ratio, action, is_active, source)
         VALUES ($1, $2, $3, $4, $5, coalesce($6::numeric, 0.8), coalesce($7, 'notify'), coalesce($8, true), 'limit')
         ON CONFLICT ON CONSTRAINT risk_limits_scope_key DO UPDATE SET limit_value = EXCLUDED.limit_value,
                warning_ratio = coalesce($6::numeric, risk_limits.warning_ratio), action = coalesce($7, risk_limits.action),
                is_active = coalesce($8, risk_limits.is_active), source = 'limit', updated_at = now()
         RETURNING ${LIMIT_COLUMNS}`,
        [input.userId, input.limitType, input.symbol ?? null, input.strategyId ?? null, input.limitValue, input.warningRatio ?? null, input.action ?? null, input.isActive ?? null],
      ).catch((error: { code?: string; constraint?: string }) => {
        if (error.code === '23503') throw new InvalidArgumentError(error.constraint?.includes('strategy') ? 'strategyId' : 'userId', 'does not exist');
        throw error;
      });
      const after = toLimit(rows[0]!);
      await audit(tx, { action: 'risk_limit.set', resourceType: 'risk_limit', resourceId: after.id, userId: input.userId, old: before[0] ? settings(toLimit(before[0])) : undefined, new: settings(after) });
      return after.id;
    });
    await this.evaluate([input.userId]);
    await this.cache.invalidate([CACHE_GROUPS.riskLimits(input.userId)]);
    return this.limit(id);
  }

  async limit(id: string): Promise<RiskLimit> {
    if (!/^[1-9]\d{0,17}$/.test(id)) throw new NotFoundError('risk limit', id);
    const { rows } = await this.db.query(`SELECT ${LIMIT_COLUMNS} FROM risk_limits WHERE id = $1::bigint`, [id]);
    if (!rows[0]) throw new NotFoundError('risk limit', id);
    return toLimit(rows[0]);
  }

  /** Removes a limit (an account limit comes back while the user's own value is set: deactivate it instead). */
  async removeLimit(id: string): Promise<void> {
    if (!/^[1-9]\d{0,17}$/.test(id)) throw new NotFoundError('risk limit', id);
    const limit = await this.db.transaction(async (tx) => {
      const { rows } = await tx.query(`DELETE FROM risk_limits WHERE id = $1::bigint RETURNING ${LIMIT_COLUMNS}`, [id]);
      if (!rows[0]) throw new NotFoundError('risk limit', id);
      const removed = toLimit(rows[0]);
      await audit(tx, { action: 'risk_limit.remove', resourceType: 'risk_limit', resourceId: id, userId: removed.userId, old: settings(removed) });
      return removed;
    });
    await this.cache.invalidate([CACHE_GROUPS.riskLimits(limit.userId)]);
  }

  /** Evaluates the users' limits now (as ingest does after each batch) and publishes what it raises. */
  async evaluate(users: string[]): Promise<RaisedRiskEvent[]> {
    const effects = emptyEffects();
    const raised = await this.db.transaction((tx) => evaluateRisk(tx, { users: new Set(users), strategies: new Set() }, effects));
    await publishEffects(this.bus, effects);
    return raised;
  }

  /** Risk events, newest first: a user's, the open ones (not resolved), of a severity. */
  async events(filters: { userId?: string; open?: boolean; severity?: string; limit?: number } = {}): Promise<RiskEvent[]> {
    const limit = Math.min(Math.max(1, filters.limit ?? 100), 1000);
    const { rows } = await this.db.query(
      `SELECT ${EVENT_COLUMNS} FROM risk_events
        WHERE ($1::text IS NULL OR user_id = $1) AND (NOT $2 OR resolved_at IS NULL) AND ($3::text IS NULL OR severity = $3)
        ORDER BY triggered_at DESC, id DESC LIMIT $4`,
      [filters.userId ?? null, filters.open ?? false, filters.severity ?? null, limit],
    );
    return rows.map(toEvent);
  }

  /** Marks an event seen (seed 001): who and when; once. */
  async acknowledge(id: string, by: string): Promise<RiskEvent> {
    return this.mark(id, by, 'acknowledged');
  }

  /** Resolves an event (seed 001): who and when; once. */
  async resolve(id: string, by: string): Promise<RiskEvent> {
    return this.mark(id, by, 'resolved');
  }

  private async mark(id: string, by: string, what: 'acknowledged' | 'resolved'): Promise<RiskEvent> {
    if (!/^[1-9]\d{0,17}$/.test(id)) throw new NotFoundError('risk event', id);
    if (typeof by !== 'string' || !by) throw new InvalidArgumentError('by', 'names who does it');
    const marked = await this.db.transaction(async (tx) => {
      const { rows } = await tx.query(
        `UPDATE risk_events SET ${what}_at = now(), ${what}_by = $2 WHERE id = $1::bigint AND ${what}_at IS NULL RETURNING ${EVENT_COLUMNS}`,
        [id, by],
      );
      if (!rows[0]) return null;
      const event = toEvent(rows[0]);
      await audit(tx, { action: `risk_event.${what === 'acknowledged' ? 'acknowledge' : 'resolve'}`, resourceType: 'risk_event', resourceId: id, userId: event.userId, new: { by } });
      return event;
    });
    if (marked) return marked;
    const { rows: existing } = await this.db.query(`SELECT ${EVENT_COLUMNS} FROM risk_events WHERE id = $1::bigint`, [id]);
    if (!existing[0]) throw new NotFoundError('risk event', id);
    throw new InvalidArgumentError('id', `risk event ${id} was ${what} already, by ${existing[0][`${what}_by`]}`);
  }
}
