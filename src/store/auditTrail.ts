import type { Queryable } from '../database/types.ts';
import { InvalidArgumentError } from './errors.ts';

/** One row of the audit trail (docs/SECURITY.md). */
export interface AuditEntry {
  id: string;
  at: string;
  /** Who: key:<id>, cli:<os user>, library. */
  actor: string | null;
  /** The user the changed resource belongs to. */
  userId: string | null;
  action: string;
  resourceType: string | null;
  resourceId: string | null;
  oldValues: unknown;
  newValues: unknown;
  ip: string | null;
  userAgent: string | null;
}

/** Reads the audit trail, newest first, with filters. */
export class AuditRepository {
  constructor(private readonly db: Queryable) {}

  /** `since` (inclusive) and `until` (exclusive) bound the time; page back by passing the oldest entry's time as `until`. */
  async list(filters: { userId?: string; resourceType?: string; resourceId?: string; action?: string; actor?: string; since?: Date; until?: Date; limit?: number } = {}): Promise<AuditEntry[]> {
    const limit = filters.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidArgumentError('limit', 'must be from 1 to 1000');
    if (filters.since !== undefined && Number.isNaN(filters.since.getTime())) throw new InvalidArgumentError('since', 'must be a time');
    if (filters.until !== undefined && Number.isNaN(filters.until.getTime())) throw new InvalidArgumentError('until', 'must be a time');
    const { rows } = await this.db.query<{ id: string; created_at: Date; actor: string | null; user_id: string | null; action: string; resource_type: string | null; resource_id: string | null; old_values: unknown; new_values: unknown; ip: string | null; user_agent: string | null }>(
      `SELECT id::text, created_at, actor, user_id, action, resource_type, resource_id, old_values, new_values, host(ip_address) AS ip, user_agent
         FROM audit_log
        WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR resource_type = $2) AND ($3::text IS NULL OR resource_id = $3)
          AND ($4::text IS NULL OR action = $4) AND ($5::text IS NULL OR actor = $5) AND ($6::timestamptz IS NULL OR created_at >= $6)
          AND ($8::timestamptz IS NULL OR created_at < $8)
        ORDER BY created_at DESC, id DESC LIMIT $7`,
      [filters.userId ?? null, filters.resourceType ?? null, filters.resourceId ?? null, filters.action ?? null, filters.actor ?? null, filters.since ?? null, limit, filters.until ?? null],
    );
    return rows.map((r) => ({
      id: r.id, at: r.created_at.toISOString(), actor: r.actor, userId: r.user_id, action: r.action, resourceType: r.resource_type, resourceId: r.resource_id,
      oldValues: r.old_values, newValues: r.new_values, ip: r.ip, userAgent: r.user_agent,
    }));
  }
}
