import { parseArgs } from 'node:util';
import type { Database } from '../database/types.ts';
import { seed } from '../schema/seed.ts';
import { createUser } from '../users/users.ts';
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
