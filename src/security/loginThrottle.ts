import type { Queryable } from '../database/types.ts';
import { AuthFailure } from './authFailure.ts';

export interface LoginLimits {
  /** Attempts that did not succeed, per account and client address, in one window; past it that pair is locked. */
  failures: number;
  /** How long the window runs and a lock lasts. */
  lockMs: number;
}

/**
 * Login attempts counted per subject in login_failures (docs/SECURITY.md), in the database so
 * every API process shares them:
 *
 * - the account as typed and the client address together: `failures` per window;
 * - the client address (an IPv6 address by its /64), whatever the account: 4 × `failures`;
 * - the account, from any address: 20 × `failures`, but not for an address the user logged in
 *   from in the last 30 days, so that an attacker cannot lock the user out for good.
 *
 * Every attempt is counted before the password is checked (concurrent tries are counted too); a
 * success gives its own count back. The attempt past a limit, and every attempt while the lock
 * lasts, is refused with 429 and when to retry, before any password is checked. A lock ends
 * after `lockMs`, and counting starts again. Accounts are counted whether they exist or not, so
 * neither the counts nor the locks tell whether one does.
 */
export class LoginThrottle {
  constructor(private readonly db: Queryable, private readonly limits: LoginLimits) {}

  private subjects(account: string, address: string) {
    const a = account.trim().toLowerCase();
    return { pair: `pair:${a}|${address}`, address: `address:${address}`, account: `account:${a}` };
  }

  /** Counts an attempt; throws a 429 AuthFailure when a subject that applies is locked or is now past its limit. */
  async attempt(account: string, address: string, knownAddress: boolean): Promise<void> {
    const s = this.subjects(account, address);
    const limit = this.limits.failures;
    const { rows } = await this.db.query<{ subject: string; failures: number; locked: boolean; retry: number }>(
      `WITH s(subject) AS (SELECT unnest($1::text[])),
            c AS (INSERT INTO login_failures AS f (subject, failures, window_ends)
                  SELECT subject, 1, now() + $2 * interval '1 millisecond' FROM s
                  ON CONFLICT (subject) DO UPDATE SET
                    failures = CASE WHEN f.window_ends <= now() THEN 1 ELSE f.failures + 1 END,
                    window_ends = CASE WHEN f.window_ends <= now() THEN excluded.window_ends ELSE f.window_ends END
                  RETURNING subject, failures, locked_until)
       SELECT subject, failures, coalesce(locked_until > now(), false) AS locked,
              coalesce(greatest(1, ceil(extract(epoch FROM locked_until - now()))), 0)::int AS retry
         FROM c`,
      [[s.pair, s.address, s.account], this.limits.lockMs],
    );
    const limits = new Map([[s.pair, limit], [s.address, 4 * limit], [s.account, knownAddress ? Infinity : 20 * limit]]);
    const applies = rows.filter((r) => limits.get(r.subject) !== Infinity);
    const locked = applies.filter((r) => r.locked);
    if (locked.length) throw this.refusal(Math.max(...locked.map((r) => r.retry)));
    const over = applies.filter((r) => r.failures > limits.get(r.subject)!);
    if (over.length) {
      await this.db.query(
        `UPDATE login_failures SET locked_until = now() + $2 * interval '1 millisecond', failures = 0, window_ends = now() + $2 * interval '1 millisecond'
          WHERE subject = ANY($1::text[])`,
        [over.map((r) => r.subject), this.limits.lockMs],
      );
      throw this.refusal(Math.ceil(this.limits.lockMs / 1000));
    }
  }

  /** A successful login gives its attempt back: the pair starts again, the others count one less. */
  async succeeded(account: string, address: string): Promise<void> {
    const s = this.subjects(account, address);
    await this.db.query(`DELETE FROM login_failures WHERE subject = $1`, [s.pair]);
    await this.db.query(`UPDATE login_failures SET failures = greatest(failures - 1, 0) WHERE subject = ANY($1::text[])`, [[s.address, s.account]]);
  }

  private refusal(retryAfterSeconds: number): AuthFailure {
    return new AuthFailure(429, 'login_locked', `too many failed logins: try again in ${retryAfterSeconds} s`, retryAfterSeconds);
  }
}
