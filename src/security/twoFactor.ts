import { createHash, randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { Database, Queryable } from '../database/types.ts';
import { audit } from './audit.ts';
import { AuthFailure } from './authFailure.ts';
import { keyIdSql, keyringOf, SealError, type Keyring, type KeyringSource } from './keyring.ts';

/**
 * Two-factor authentication (seed 000's users.two_factor_enabled, docs/SECURITY.md): TOTP
 * (RFC 6238: SHA-1, 6 digits, 30 s, as authenticator apps expect) with the otpauth library, and
 * ten one-time recovery codes stored as SHA-256 digests. The TOTP secret is sealed with the
 * keyring (the user's id as associated data), so a copy of the database cannot make codes. A
 * code is accepted one step either side of now, and never twice: users.totp_last_step holds the
 * last step used and only a later one is taken.
 */
const PERIOD = 30;
const RECOVERY_CODES = 10;
const associated = (userId: string) => JSON.stringify(['tradestore:users', userId, 'totp_secret']);
const digest = (code: string) => createHash('sha256').update(code).digest('hex');
/** 16 base32 characters (80 random bits), shown as four groups of four; typed with or without dashes, any case. */
const newRecoveryCode = () => new Secret({ size: 10 }).base32.match(/.{4}/g)!.join('-');
const normaliseRecovery = (code: string) => code.replace(/[\s-]/g, '').toUpperCase();
const totpOf = (secret: Buffer, label: string) =>
  new TOTP({ issuer: 'tradestore', label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: new Secret({ buffer: new Uint8Array(secret).buffer }) });

export interface TwoFactorSetup {
  /** Base32, for typing into an authenticator app. */
  secret: string;
  /** otpauth:// URI, for a QR code. */
  uri: string;
}

export class TwoFactor {
  private readonly keyring: () => Keyring;

  constructor(private readonly db: Database, keys: KeyringSource) {
    this.keyring = keyringOf(keys, 'two-factor secrets').required;
  }

  /**
   * A new TOTP secret for a user who has not turned two-factor authentication on (it stays off
   * until `enable` sees a code made with it). A setup not finished is replaced by the next one.
   */
  async setup(userId: string): Promise<TwoFactorSetup> {
    const k = this.keyring();
    const secret = randomBytes(20);
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ email: string }>(
        `UPDATE users SET totp_secret = $2, totp_last_step = NULL, updated_at = now() WHERE id = $1 AND NOT two_factor_enabled RETURNING email`,
        [userId, k.seal(secret, associated(userId))],
      );
      if (!rows[0]) throw new AuthFailure(409, 'two_factor_enabled', 'two-factor authentication is on already: turn it off first (with a code)');
      await audit(tx, { action: 'two_factor.setup', resourceType: 'user', resourceId: userId, userId });
      return { secret: new Secret({ buffer: new Uint8Array(secret).buffer }).base32, uri: totpOf(secret, rows[0].email).toString() };
    });
  }

  /** Turns it on once `code` was made with the secret from `setup`; returns the recovery codes (shown once). */
  async enable(userId: string, code: string): Promise<{ recoveryCodes: string[] }> {
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ totp_secret: Uint8Array | null; two_factor_enabled: boolean; totp_last_step: string | null }>(
        `SELECT totp_secret, two_factor_enabled, totp_last_step FROM users WHERE id = $1 FOR UPDATE`, [userId]);
      const user = rows[0];
      if (!user?.totp_secret) throw new AuthFailure(409, 'two_factor_not_set_up', 'set two-factor authentication up first (POST /v1/auth/2fa/setup)');
      if (user.two_factor_enabled) throw new AuthFailure(409, 'two_factor_enabled', 'two-factor authentication is on already');
      if (!(await this.takeCode(tx, userId, user.totp_secret, user.totp_last_step, code))) {
        throw new AuthFailure(401, 'invalid_two_factor_code', 'the code is not valid: use the current code of the authenticator set up with this secret');
      }
      const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
      await tx.query(`UPDATE users SET two_factor_enabled = true, updated_at = now() WHERE id = $1`, [userId]);
      await tx.query(`DELETE FROM user_recovery_codes WHERE user_id = $1`, [userId]);
      await tx.query(`INSERT INTO user_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::text[])`, [userId, codes.map((c) => digest(normaliseRecovery(c)))]);
      await audit(tx, { action: 'two_factor.enable', resourceType: 'user', resourceId: userId, userId, old: { twoFactor: false }, new: { twoFactor: true, recoveryCodes: RECOVERY_CODES } });
      return { recoveryCodes: codes };
    });
  }

  /** Turns it off (with a current code or a recovery code, or without one for an operator's reset); forgets the secret and the codes. */
  async disable(userId: string, proof: { code?: string | undefined; recoveryCode?: string | undefined } | 'operator'): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (proof !== 'operator' && !(await this.check(tx, userId, proof))) {
        throw new AuthFailure(401, 'invalid_two_factor_code', 'a current code or an unused recovery code is needed to turn two-factor authentication off');
      }
      const { rows } = await tx.query<{ was: boolean }>(
        `UPDATE users u SET two_factor_enabled = false, totp_secret = NULL, totp_last_step = NULL, updated_at = now()
           FROM (SELECT two_factor_enabled AS was FROM users WHERE id = $1 FOR UPDATE) o WHERE u.id = $1 RETURNING o.was`, [userId]);
      if (!rows[0]) throw new AuthFailure(404, 'unknown_user', `unknown user ${JSON.stringify(userId)}`);
      await tx.query(`DELETE FROM user_recovery_codes WHERE user_id = $1`, [userId]);
      await audit(tx, { action: 'two_factor.disable', resourceType: 'user', resourceId: userId, userId, old: { twoFactor: rows[0].was }, new: { twoFactor: false, by: proof === 'operator' ? 'operator' : 'user' } });
    });
  }

  /**
   * Whether `proof` is a valid second factor of a user who has two-factor authentication on: a
   * TOTP code not used before, or an unused recovery code (used up by this call). Runs in `tx`,
   * so the code is spent only if the caller's change commits.
   */
  async check(tx: Queryable, userId: string, proof: { code?: string | undefined; recoveryCode?: string | undefined }): Promise<boolean> {
    if (proof.recoveryCode) {
      const { rows } = await tx.query(
        `UPDATE user_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL
           AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND two_factor_enabled) RETURNING id`,
        [userId, digest(normaliseRecovery(proof.recoveryCode))],
      );
      if (rows.length) await audit(tx, { action: 'two_factor.recovery_code_used', resourceType: 'user', resourceId: userId, userId });
      return rows.length > 0;
    }
    if (!proof.code) return false;
    const { rows } = await tx.query<{ totp_secret: Uint8Array | null; totp_last_step: string | null }>(
      `SELECT totp_secret, totp_last_step FROM users WHERE id = $1 AND two_factor_enabled FOR UPDATE`, [userId]);
    const user = rows[0];
    return Boolean(user?.totp_secret) && this.takeCode(tx, userId, user!.totp_secret!, user!.totp_last_step, proof.code);
  }

  /** Whether `code` is valid now for the sealed secret and later than the last step used; if so, that step is used. */
  private async takeCode(tx: Queryable, userId: string, sealed: Uint8Array, lastStep: string | null, code: string): Promise<boolean> {
    if (!/^\d{6}$/.test(code)) return false;
    let secret: Buffer;
    try {
      secret = this.keyring().open(sealed, associated(userId));
    } catch (error) {
      if (error instanceof SealError) throw new SealError(`the two-factor secret of user ${userId}: ${error.message}`);
      throw error;
    }
    const now = Date.now();
    const delta = totpOf(secret, userId).validate({ token: code, window: 1, timestamp: now });
    if (delta === null) return false;
    const step = TOTP.counter({ period: PERIOD, timestamp: now }) + delta;
    if (lastStep !== null && step <= Number(lastStep)) return false;
    await tx.query(`UPDATE users SET totp_last_step = $2 WHERE id = $1`, [userId, step]);
    return true;
  }
}

/** How many TOTP secrets each key seals (by the key each sealed value names). */
export async function secretsByKey(db: Queryable): Promise<Map<string, number>> {
  const { rows } = await db.query<{ k: string; n: string }>(
    `SELECT ${keyIdSql('totp_secret')} AS k, count(*)::text AS n FROM users WHERE totp_secret IS NOT NULL GROUP BY 1`);
  return new Map(rows.map((r) => [r.k, Number(r.n)]));
}

/**
 * Re-seals every TOTP secret under the keyring's current key, `batchSize` users per
 * transaction (rows held elsewhere are taken by a later run), as `tradestore keys rotate` does
 * for credentials. A secret that does not open is left as it is and reported.
 */
export async function rotateSecrets(db: Database, k: Keyring, batchSize: number): Promise<{ rotated: number; failed: { id: string; reason: string }[] }> {
  let after = '';
  let rotated = 0;
  const failed: { id: string; reason: string }[] = [];
  for (;;) {
    const last = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string; totp_secret: Uint8Array }>(
        `SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL AND ${keyIdSql('totp_secret')} <> $1 AND id > $2
          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED`, [k.current, after, batchSize]);
      for (const r of rows) {
        try {
          const resealed = k.seal(k.open(r.totp_secret, associated(r.id)), associated(r.id));
          await tx.query(`UPDATE users SET totp_secret = $2 WHERE id = $1`, [r.id, resealed]);
          await audit(tx, { action: 'two_factor.rotate', resourceType: 'user', resourceId: r.id, userId: r.id, old: { keyId: k.keyOf(r.totp_secret) }, new: { keyId: k.current } });
          rotated += 1;
        } catch (error) {
          if (!(error instanceof SealError)) throw error;
          failed.push({ id: r.id, reason: `the two-factor secret of user ${r.id}: ${error.message}` });
        }
      }
      return rows.at(-1)?.id ?? null;
    });
    if (last === null) return { rotated, failed };
    after = last;
  }
}

/** The code an authenticator app shows now for a base32 secret (tests and the demo use it). */
export const totpCode = (base32: string, timestamp = Date.now()) =>
  new TOTP({ algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(base32) }).generate({ timestamp });
