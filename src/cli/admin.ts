import { parseArgs } from 'node:util';
import type { Database } from '../database/types.ts';
import { seed } from '../schema/seed.ts';
import { createUser } from '../users/users.ts';
import { ApiKeyRepository, parseScopes } from '../store/apiKeys.ts';
import { InvalidArgumentError } from '../store/errors.ts';
import { UsageError } from './usage.ts';

export async function seedCommand(db: Database, args: string[], out: (line: string) => void): Promise<void> {
  parseArgs({ args, options: {}, strict: true });
  const r = await seed(db);
  out(
    `seeded: ${r.markets} markets, ${r.instruments} instruments, ${r.strategies} strategies, ` +
      `${r.tradingFees} trading fees, ${r.systemConfig} config keys (rows that existed were kept)`,
  );
}

export async function userCommand(db: Database, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'create') throw new UsageError('user needs a subcommand: create');
  const { values } = parseArgs({
    args: rest,
    options: { id: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' } },
    strict: true,
  });
  if (!values.id) throw new UsageError('user create needs --id');
  if (!values.email) throw new UsageError('user create needs --email');
  const user = await createUser(db, { id: values.id, email: values.email, password: values.password });
  out(`created user ${user.id} <${user.email}>${user.hasPassword ? ' (password hashed with argon2id)' : ' (no password: API keys only)'}`);
}

export async function apiKeyCommand(db: Database, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  const keys = new ApiKeyRepository(db);
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
    const created = await keys.create(values.user, scopes, values.name ?? 'api key');
    if (values.json) return out(JSON.stringify({ id: created.keyId, userId: created.userId, scopes: created.scopes, key: created.key }));
    out(`created API key ${created.keyId} for user ${created.userId} with scopes ${created.scopes.join(',')}`);
    out(`key (shown once, stored only as a hash): ${created.key}`);
    return;
  }
  if (action === 'revoke') {
    const { values } = parseArgs({ args: rest, options: { id: { type: 'string' } }, strict: true });
    if (!values.id || !/^\d{1,18}$/.test(values.id)) throw new UsageError('apikey revoke needs --id N (the number apikey create printed)');
    await keys.revoke(values.id);
    return out(`revoked API key ${values.id}`);
  }
  throw new UsageError('apikey needs a subcommand: create or revoke');
}
