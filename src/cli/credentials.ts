import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import { openDatabase } from '../database/open.ts';
import { InvalidArgumentError, NotFoundError } from '../store/errors.ts';
import type { Credential } from '../store/credentials.ts';
import { storeOver, type Store } from '../store/store.ts';
import { readStdin } from './password.ts';
import { rotateSecrets, secretsByKey } from '../security/twoFactor.ts';
import { intOption, UsageError } from './usage.ts';

const line = (c: Credential) =>
  `${c.id.padStart(5)}  ${c.exchange}  ${c.userId ?? '(deployment)'}  key ${c.keyId}${c.isActive ? '' : ' (inactive)'}  created ${c.createdAt}`;

/** Opens the store for one command and closes it after; store errors become usage errors where they are the caller's. */
export async function withStore(config: Config, fn: (store: Store) => Promise<void>): Promise<void> {
  const db = await openDatabase(config);
  const bus = openBus(config);
  try {
    await fn(storeOver(db, bus, undefined, config.keyring, config.sessions));
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(error.parameter === 'TRADESTORE_KEYRING' ? error.message : `--${error.parameter}: ${error.message.replace(/^[^:]+: /, '')}`);
    if (error instanceof NotFoundError) throw new UsageError(error.message);
    throw error;
  } finally {
    await bus.close();
    await db.close();
  }
}

/**
 * tradestore credentials add|list|remove: exchange and broker credentials, sealed under the
 * keyring (docs/SECURITY.md). `add` reads the API key and the secret from standard input (two
 * lines), never from the command line; `list` never shows them.
 */
export async function credentialsCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (!['add', 'list', 'remove'].includes(action ?? '')) throw new UsageError('credentials needs add, list or remove');
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true, strict: true,
    options: { exchange: { type: 'string' }, user: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } },
  });
  if ((action === 'remove') !== (positionals.length === 1) || positionals.length > 1) throw new UsageError(action === 'remove' ? 'credentials remove needs the id' : `credentials ${action} takes no id`);
  if (action === 'add' && !values.exchange) throw new UsageError('credentials add needs --exchange NAME (the API key and secret come on standard input, one a line)');
  let extra: Record<string, unknown> | undefined;
  if (values.config !== undefined) {
    try {
      extra = JSON.parse(values.config) as Record<string, unknown>;
    } catch {
      throw new UsageError('--config must be a JSON object');
    }
    if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) throw new UsageError('--config must be a JSON object');
  }
  config.keyring(); // a keyring that is not valid is a configuration error (exit 2) before anything is read
  let secrets: [string, string] | null = null;
  if (action === 'add') {
    const [apiKey = '', apiSecret = ''] = (await readStdin()).split(/\r?\n/);
    if (!apiKey || !apiSecret) throw new UsageError('credentials add reads the API key and the secret from standard input, one a line');
    secrets = [apiKey, apiSecret];
  }
  await withStore(config, async ({ credentials }) => {
    if (action === 'add') {
      const c = await credentials.add({ exchange: values.exchange!, userId: values.user ?? null, apiKey: secrets![0], apiSecret: secrets![1], config: extra });
      return values.json ? out(JSON.stringify(c, null, 2)) : out(`added ${line(c).trim()}`);
    }
    if (action === 'list') {
      const all = await credentials.list({ userId: values.user });
      if (values.json) return out(JSON.stringify(all, null, 2));
      if (!all.length) return out('no credentials');
      for (const c of all) out(line(c));
      return;
    }
    await credentials.remove(positionals[0]!);
    out(`removed credential ${positionals[0]}`);
  });
}

/**
 * tradestore keys status|rotate|retire: which keys seal how many credentials; re-seal them all
 * under the current key (in batches, resumable); check that a key can leave the keyring.
 */
export async function keysCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (!['status', 'rotate', 'retire'].includes(action ?? '')) throw new UsageError('keys needs status, rotate or retire');
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { batch: { type: 'string' }, json: { type: 'boolean' } } });
  if ((action === 'retire') !== (positionals.length === 1) || positionals.length > 1) throw new UsageError(action === 'retire' ? 'keys retire needs the key id' : `keys ${action} takes no key id`);
  const batchSize = intOption('batch', values.batch) ?? 100;
  if (batchSize < 1 || batchSize > 10_000) throw new UsageError('--batch must be from 1 to 10000');
  const keys = config.keyring();
  if (!keys) throw new UsageError('TRADESTORE_KEYRING is not set: the keys are in it (docs/SECURITY.md)');
  await withStore(config, async ({ credentials, db }) => {
    // Credentials and users' two-factor secrets are sealed under the same keyring.
    const usageOf = async () => {
      const secrets = await secretsByKey(db);
      const usage = await credentials.keyUsage();
      const extra = [...secrets.keys()].filter((k) => !usage.some((u) => u.keyId === k))
        .map((keyId) => ({ keyId, credentials: 0, inKeyring: keys.ids().includes(keyId), current: keys.current === keyId }));
      return [...usage, ...extra].map((u) => ({ ...u, twoFactorSecrets: secrets.get(u.keyId) ?? 0 })).sort((a, b) => a.keyId.localeCompare(b.keyId));
    };
    if (action === 'status') {
      const usage = await usageOf();
      if (values.json) return out(JSON.stringify(usage, null, 2));
      for (const u of usage) {
        out(`${u.keyId}${u.current ? ' (current)' : ''}: ${u.credentials} credential${u.credentials === 1 ? '' : 's'}, ${u.twoFactorSecrets} two-factor secret${u.twoFactorSecrets === 1 ? '' : 's'}${u.inKeyring ? '' : ' — NOT IN THE KEYRING: they cannot be opened'}`);
      }
      return;
    }
    if (action === 'rotate') {
      const done = await credentials.rotate({ batchSize, onProgress: (p) => out(`rotate: ${p.rotated} re-sealed under ${keys.current}, ${p.remaining} to go`) });
      const secrets = await rotateSecrets(db, keys, batchSize);
      out(`rotate: ${secrets.rotated} two-factor secret${secrets.rotated === 1 ? '' : 's'} re-sealed under ${keys.current}`);
      const failed = [...done.failed, ...secrets.failed];
      for (const f of failed) out(`rotate: not re-sealed: ${f.reason}`);
      if (failed.length) throw new Error(`${failed.length} value${failed.length === 1 ? '' : 's'} could not be opened and were left as they are (listed above); the others were re-sealed`);
      const secretsLeft = [...(await secretsByKey(db)).entries()].filter(([k]) => k !== keys.current).reduce((n, [, c]) => n + c, 0);
      if (done.remaining === 0 && secretsLeft === 0) return out(`every credential and two-factor secret is sealed under ${keys.current}`);
      return out(`${done.remaining} credential(s) and ${secretsLeft} two-factor secret(s) were held by other transactions: run it again`);
    }
    const id = positionals[0]!;
    const usage = (await usageOf()).find((u) => u.keyId === id);
    if (!usage) throw new UsageError(`no key ${id} in the keyring or the credentials`);
    if (usage.current) throw new Error(`key ${id} is the current key: make another one current and rotate first`);
    if (usage.credentials > 0) throw new Error(`key ${id} still seals ${usage.credentials} credential${usage.credentials === 1 ? '' : 's'}: run tradestore keys rotate first`);
    if (usage.twoFactorSecrets > 0) throw new Error(`key ${id} still seals ${usage.twoFactorSecrets} two-factor secret${usage.twoFactorSecrets === 1 ? '' : 's'}: run tradestore keys rotate first`);
    out(`key ${id} seals no stored credential: remove it from TRADESTORE_KEYRING once no backup you may restore was taken before the rotation (those still need it)`);
  });
}
