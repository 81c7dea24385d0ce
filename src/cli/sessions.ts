import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { withStore } from './credentials.ts';
import { UsageError } from './usage.ts';

/**
 * tradestore sessions list|revoke|two-factor-off --user ID: an operator's view of a user's
 * password sessions (never a token), "log out everywhere" on the user's behalf, and turning
 * two-factor authentication off for a user who lost the authenticator and the recovery codes.
 * Each change is audited as the CLI's operating-system user.
 */
export async function sessionsCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (!['list', 'revoke', 'two-factor-off'].includes(action ?? '')) throw new UsageError('sessions needs list, revoke or two-factor-off');
  const { values } = parseArgs({ args: rest, strict: true, options: { user: { type: 'string' }, json: { type: 'boolean' } } });
  if (!values.user) throw new UsageError(`sessions ${action} needs --user ID`);
  const user = values.user;
  await withStore(config, async (store) => {
    const { rows } = await store.db.query('SELECT 1 FROM users WHERE id = $1', [user]);
    if (!rows.length) throw new UsageError(`unknown user ${JSON.stringify(user)}`);
    if (action === 'list') {
      const sessions = await store.sessions.list(user);
      if (values.json) return out(JSON.stringify(sessions, null, 2));
      if (!sessions.length) return out(`no live sessions of user ${user}`);
      for (const s of sessions) {
        out(`${s.id.padStart(6)}  ${s.scopes.join(',').padEnd(16)} from ${s.ipAddress ?? '?'}  created ${s.createdAt.toISOString()}, last used ${s.lastAccessed.toISOString()}, refreshable until ${s.refreshExpiresAt?.toISOString() ?? 'never'}`);
      }
      return;
    }
    if (action === 'revoke') return out(`revoked ${await store.sessions.logoutAll(user, 'admin')} live session(s) of user ${user}`);
    await store.twoFactor.disable(user, 'operator');
    out(`two-factor authentication is off for user ${user}; they log in with their password and can turn it on again`);
  });
}
