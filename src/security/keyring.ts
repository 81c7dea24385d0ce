import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../config.ts';
import { InvalidArgumentError } from '../store/errors.ts';

/**
 * The keys that encrypt credentials at rest (docs/SECURITY.md), from configuration only: the
 * database holds ciphertexts and key ids, never a key. TRADESTORE_KEYRING is either the keyring
 * itself or the path of a file that holds it, as JSON:
 *
 *   {"current": "2026-12", "keys": {"2026-06": "<32 bytes, base64>", "2026-12": "<…>"}}
 *
 * New values are sealed under `current`; the others still open what they sealed until
 * `tradestore keys rotate` has moved everything to the current key.
 */
export interface Keyring {
  current: string;
  /** The ids of every key, current included. */
  ids(): string[];
  seal(plaintext: Buffer, associated: string): Buffer;
  /** Opens a sealed value (a Buffer, or the Uint8Array the embedded database gives for BYTEA). */
  open(sealed: Uint8Array, associated: string): Buffer;
  /** The id of the key a sealed value names (without opening it). */
  keyOf(sealed: Uint8Array): string;
}

/** A sealed value that cannot be opened: unknown key, altered bytes, or another row's value. */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

const KEY_ID = /^[A-Za-z0-9_.-]{1,50}$/;
/** The id of the key a stored value names, read in SQL from `column` (the format above: version | id length | id | …). */
export const keyIdSql = (column: string) =>
  `(CASE WHEN length(${column}) >= 2 THEN convert_from(substring(${column} from 3 for get_byte(${column}, 1)), 'SQL_ASCII') ELSE '' END)`;
const bytes = (v: Uint8Array) => (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
const VERSION = 1;
const NONCE = 12;
const TAG = 16;

/** Reads TRADESTORE_KEYRING; null when it is not set. Errors name the problem, never a key. */
export function loadKeyring(value: string | undefined): Keyring | null {
  if (value === undefined || value.trim() === '') return null;
  let text = value.trim();
  if (!text.startsWith('{')) {
    if (!existsSync(text)) throw new ConfigError('TRADESTORE_KEYRING is neither a JSON keyring nor the path of a file that exists');
    try {
      text = readFileSync(text, 'utf8');
    } catch (error) {
      throw new ConfigError(`TRADESTORE_KEYRING: the keyring file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('TRADESTORE_KEYRING is not valid JSON: expected {"current": "<key id>", "keys": {"<key id>": "<32 bytes, base64>"}}');
  }
  const { current, keys } = (parsed ?? {}) as { current?: unknown; keys?: unknown };
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys) || Object.keys(keys).length === 0) {
    throw new ConfigError('TRADESTORE_KEYRING needs "keys": an object of key ids and their keys');
  }
  const material = new Map<string, Buffer>();
  // Messages name an entry by its position, never by its id or its value: an id and a key swapped
  // by mistake would otherwise print the key.
  for (const [i, [id, key]] of Object.entries(keys as Record<string, unknown>).entries()) {
    if (!KEY_ID.test(id) || id.length > 40) throw new ConfigError(`TRADESTORE_KEYRING: the id of key ${i + 1} must be 1-40 letters, digits, _ . or - (are an id and a key swapped?)`);
    const bytes = typeof key === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(key) ? Buffer.from(key, 'base64') : null;
    if (!bytes || bytes.length !== 32) throw new ConfigError(`TRADESTORE_KEYRING: key ${i + 1} must be 32 bytes in base64 (openssl rand -base64 32)`);
    material.set(id, bytes);
  }
  if (typeof current !== 'string' || !material.has(current)) throw new ConfigError('TRADESTORE_KEYRING: "current" must name one of its keys');
  return keyring(current, material);
}

/**
 * TRADESTORE_KEYRING read when first needed, not at start: a command that never touches a
 * credential (migrate, health, backup) works whatever the keyring holds. The same error each time.
 */
export function lazyKeyring(value: string | undefined): () => Keyring | null {
  let loaded: { keyring: Keyring | null } | { error: unknown } | undefined;
  return () => {
    loaded ??= (() => {
      try {
        return { keyring: loadKeyring(value) };
      } catch (error) {
        return { error };
      }
    })();
    if ('error' in loaded) throw loaded.error;
    return loaded.keyring;
  };
}

/** A keyring over these keys (for tests and tools; configuration goes through loadKeyring). */
export function keyring(current: string, keys: Map<string, Buffer>): Keyring {
  const key = (id: string) => {
    const k = keys.get(id);
    if (!k) throw new SealError(`the value is sealed under key ${id}, which is not in the keyring`);
    return k;
  };
  const keyOf = (value: Uint8Array) => {
    const sealed = bytes(value);
    if (sealed.length < 2 || sealed[0] !== VERSION || sealed.length < 2 + sealed[1]! + NONCE + TAG) throw new SealError('the value is not a sealed value of this format');
    const id = sealed.subarray(2, 2 + sealed[1]!).toString('latin1');
    // A key id from the database goes into messages: only a well-formed one.
    if (!KEY_ID.test(id)) throw new SealError('the value is not a sealed value of this format (its key id is malformed)');
    return id;
  };
  return {
    current,
    ids: () => [...keys.keys()],
    keyOf,
    /** version (1) | id length | key id | nonce (12) | tag (16) | ciphertext: AES-256-GCM, a fresh nonce each time. */
    seal(plaintext, associated) {
      const id = Buffer.from(current, 'latin1');
      const nonce = randomBytes(NONCE);
      const cipher = createCipheriv('aes-256-gcm', key(current), nonce);
      cipher.setAAD(Buffer.from(associated, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION, id.length]), id, nonce, cipher.getAuthTag(), body]);
    },
    open(value, associated) {
      const sealed = bytes(value);
      const id = keyOf(sealed);
      const at = 2 + sealed[1]!;
      const decipher = createDecipheriv('aes-256-gcm', key(id), sealed.subarray(at, at + NONCE));
      decipher.setAAD(Buffer.from(associated, 'utf8'));
      decipher.setAuthTag(sealed.subarray(at + NONCE, at + NONCE + TAG));
      try {
        return Buffer.concat([decipher.update(sealed.subarray(at + NONCE + TAG)), decipher.final()]);
      } catch {
        throw new SealError(`the value does not open under key ${id}: it was altered, or it belongs to another row or column`);
      }
    },
  };
}

/** A keyring, none, or a function that reads it when first asked (Config.keyring). */
export type KeyringSource = Keyring | null | (() => Keyring | null);

/**
 * The keyring `source` gives when asked: `optional()` may be null; `required()` throws an
 * InvalidArgumentError naming TRADESTORE_KEYRING and `what` is sealed under it.
 */
export function keyringOf(source: KeyringSource, what: string): { optional: () => Keyring | null; required: () => Keyring } {
  const optional = typeof source === 'function' ? source : () => source;
  return {
    optional,
    required: () => {
      const k = optional();
      if (!k) throw new InvalidArgumentError('TRADESTORE_KEYRING', `is not set: ${what} are sealed under its keys (docs/SECURITY.md)`);
      return k;
    },
  };
}
