import { parseArgs } from 'node:util';
import type { Database } from '../database/types.ts';
import { seed } from '../schema/seed.ts';
import { createUser, listUsers, setPassword, UserInputError, validateNewUser } from '../users/users.ts';
import { ApiKeyRepository, parseScopes } from '../store/apiKeys.ts';
import { InvalidArgumentError } from '../store/errors.ts';
import { readPassword } from './password.ts';
import { UsageError } from './usage.ts';

/** Opens the database when called: every argument is checked before. */
export type OpenDatabase = () => Promise<Database>;

export async function seedCommand(open: OpenDatabase, args: string[], out: (line: string) => void): Promise<void> {
  parseArgs({ args, options: {}, strict: true });
  const r = await seed(await open());
  out(
    `seeded: ${r.markets} markets, ${r.instruments} instruments, ${r.strategies} strategies, ` +
      `${r.tradingFees} trading fees, ${r.systemConfig} config keys (rows that existed were kept)`,
  );
}

export async function userCommand(open: OpenDatabase, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (action === 'list') {
    const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true });
    const users = await listUsers(await open());
    if (values.json) return out(JSON.stringify(users, null, 2));
    if (users.length === 0) return out('no users');
    for (const u of users) {
      const flags = [u.isActive ? 'active' : 'inactive', u.hasPassword ? 'password' : 'no password', u.twoFactor ? '2FA' : null, `${u.activeKeys} active key${u.activeKeys === 1 ? '' : 's'}`].filter(Boolean);
      out(`${u.id.padEnd(20)} ${u.email.padEnd(32)} ${flags.join(', ')}; created ${u.createdAt.toISOString()}${u.lastLogin ? `, last login ${u.lastLogin.toISOString()}` : ''}`);
    }
    return;
  }
  if (action === 'password') {
    const { values } = parseArgs({ args: rest, options: { id: { type: 'string' }, password: { type: 'string' }, 'password-stdin': { type: 'boolean' }, 'prompt-password': { type: 'boolean' } }, strict: true });
    if (values.password !== undefined) throw new UsageError('--password would show the password to anyone who lists processes (ps): use --password-stdin, --prompt-password or TRADESTORE_PASSWORD');
    if (!values.id) throw new UsageError('user password needs --id');
    const password = await readPassword({ stdin: Boolean(values['password-stdin']), prompt: Boolean(values['prompt-password']) });
    if (password === undefined) throw new UsageError('user password needs the new password: --password-stdin, --prompt-password or TRADESTORE_PASSWORD');
    try {
      const { sessionsRevoked } = await setPassword(await open(), values.id, password);
      return out(`password of user ${values.id} set (argon2id); ${sessionsRevoked} live session(s) ended`);
    } catch (error) {
      if (error instanceof UserInputError) throw new UsageError(error.message);
      throw error;
    }
  }
  if (action !== 'create') throw new UsageError('user needs a subcommand: create, password or list');
  const { values } = parseArgs({
    args: rest,
    options: { id: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' }, 'password-stdin': { type: 'boolean' }, 'prompt-password': { type: 'boolean' }, scopes: { type: 'string' } },
    strict: true,
  });
  if (values.password !== undefined) {
    throw new UsageError('--password would show the password to anyone who lists processes (ps): use --password-stdin, --prompt-password or TRADESTORE_PASSWORD');
  }
  if (!values.id) throw new UsageError('user create needs --id');
  if (!values.email) throw new UsageError('user create needs --email');
  let scopes;
  try {
    scopes = values.scopes === undefined ? undefined : parseScopes(values.scopes);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(`--${error.message}`);
    throw error;
  }
  const password = await readPassword({ stdin: Boolean(values['password-stdin']), prompt: Boolean(values['prompt-password']) });
  const user = { id: values.id, email: values.email, password, scopes };
  try {
    validateNewUser(user);
  } catch (error) {
    if (error instanceof UserInputError) throw new UsageError(error.message);
    throw error;
  }
  const created = await createUser(await open(), user);
  out(`created user ${created.id} <${created.email}>${created.hasPassword ? ' (password hashed with argon2id)' : ' (no password: API keys only)'}; sessions may ${created.scopes.join(', ')}`);
}

export async function apiKeyCommand(open: OpenDatabase, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (action === 'create') {
    const { values } = parseArgs({
      args: rest,
      options: { user: { type: 'string' }, scopes: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } },
      strict: true,
    });
    if (!values.user) throw new UsageError('apikey create needs --user ID');
    let scopes;
    try {
      scopes = parseScopes(values.scopes ?? 'read');
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw new UsageError(`--${error.message}`);
      throw error;
    }
    const created = await new ApiKeyRepository(await open()).create(values.user, scopes, values.name ?? 'api key');
    if (values.json) return out(JSON.stringify({ id: created.keyId, userId: created.userId, scopes: created.scopes, key: created.key }));
    out(`created API key ${created.keyId} for user ${created.userId} with scopes ${created.scopes.join(',')}`);
    out(`key (shown once, stored only as a hash): ${created.key}`);
    return;
  }
  if (action === 'list') {
    const { values } = parseArgs({ args: rest, options: { user: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
    const keys = await new ApiKeyRepository(await open()).list(values.user);
    if (values.json) return out(JSON.stringify(keys, null, 2));
    if (keys.length === 0) return out(`no API keys${values.user ? ` of user ${values.user}` : ''}`);
    for (const k of keys) {
      const when = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : k.expiresAt ? `expires ${k.expiresAt.toISOString()}` : 'no expiry';
      out(`${k.id.padStart(6)}  ${k.prefix.padEnd(20)} ${k.userId.padEnd(16)} ${k.status.padEnd(8)} ${k.scopes.join(',').padEnd(16)} ${k.name}; created ${k.createdAt.toISOString()}, ${when}${k.lastUsedAt ? `, last used ${k.lastUsedAt.toISOString()}` : ''}`);
    }
    return;
  }
  if (action === 'revoke') {
    const { values } = parseArgs({ args: rest, options: { id: { type: 'string' } }, strict: true });
    if (!values.id || !/^\d{1,18}$/.test(values.id)) throw new UsageError('apikey revoke needs --id N (the number apikey create and apikey list print)');
    const result = await new ApiKeyRepository(await open()).revoke(values.id);
    return out(result.already ? `API key ${values.id} was already revoked (at ${result.revokedAt.toISOString()}); nothing changed` : `revoked API key ${values.id}`);
  }
  throw new UsageError('apikey needs a subcommand: create, list or revoke');
}
