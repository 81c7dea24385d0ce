import type { Queryable } from '../../database/types.ts';
import { add, cmp, describeFit } from './decimals.ts';
import { existingKeys } from './rows.ts';
import { charge, keepPending, lockFeeMarkets, storedTradeFees } from './feeCharges.ts';
import type { ApplyResult, Effects, Entry } from './types.ts';

interface Balance {
  userId: string;
  asset: string;
  available: string;
  locked: string;
  changed: boolean;
}

const pairKey = (userId: string, asset: string) => `${userId}\u0000${asset}`;

/**
 * Seed 000's BalanceManager without its floats, for a whole batch: the (user, asset) rows are
 * read once under FOR UPDATE, every change is checked in order against the running values
 * (available and locked never go negative; a change that would is rejected alone), each
 * accepted change writes a balance_history row with before and after, and each row is written
 * back once.
 */
export async function applyBalances(tx: Queryable, sent: Entry<'BALANCE_UPDATE'>[], effects: Effects): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  const known = await existingKeys(tx, 'users', sent.map((e) => e.event.data.userId));
  const entries = await withTradeFees(tx, sent, known, rejected);
  const pairs = [...new Map(entries.map((e) => [pairKey(e.event.data.userId, e.event.data.asset), e.event.data])).values()];
  const { rows } = await tx.query<{ user_id: string; asset: string; available: string; locked: string }>(
    `SELECT b.user_id, b.asset, b.available_balance::text AS available, b.locked_balance::text AS locked
       FROM balances b JOIN unnest($1::text[], $2::text[]) AS p(user_id, asset) USING (user_id, asset)
      ORDER BY b.user_id, b.asset FOR UPDATE OF b`,
    [pairs.map((p) => p.userId), pairs.map((p) => p.asset)],
  );
  const balances = new Map<string, Balance>(
    rows.map((r) => [pairKey(r.user_id, r.asset), { userId: r.user_id, asset: r.asset, available: r.available, locked: r.locked, changed: false }]),
  );
  const history: unknown[][] = [];
  const now = new Date();
  for (const entry of entries) {
    const d = entry.event.data;
    if (!known.has(d.userId)) {
      rejected.push({ key: entry.key, reason: `unknown user ${d.userId}` });
      continue;
    }
    const k = pairKey(d.userId, d.asset);
    const current = balances.get(k) ?? { userId: d.userId, asset: d.asset, available: '0', locked: '0', changed: false };
    const available = add(current.available, d.availableChange);
    const locked = add(current.locked, d.lockedChange);
    const reason =
      cmp(available, '0') < 0
        ? `insufficient available ${d.asset} for ${d.userId}: ${current.available} ${sign(d.availableChange)} would be ${available}`
        : cmp(locked, '0') < 0
          ? `insufficient locked ${d.asset} for ${d.userId}: ${current.locked} ${sign(d.lockedChange)} would be ${locked}`
          : (describeFit('availableChange', d.availableChange) ?? describeFit('lockedChange', d.lockedChange) ??
            describeFit('available balance', available, 38) ?? describeFit('locked balance', locked, 38));
    if (reason) {
      rejected.push({ key: entry.key, reason });
      continue;
    }
    history.push([
      d.userId, d.asset, d.changeType, d.availableChange, current.available, available,
      d.lockedChange, current.locked, locked, d.referenceId ?? null, d.description ?? null, entry.event.eventId ?? entry.key,
      d.timestamp ?? now,
    ]);
    balances.set(k, { userId: d.userId, asset: d.asset, available, locked, changed: true });
  }
  const changed = [...balances.values()].filter((b) => b.changed);
  if (changed.length) {
    const column = (i: number) => history.map((row) => row[i]);
    // One statement (one round trip): the balances, and their history in a data-modifying CTE.
    await tx.query(
      `WITH changed AS (
         INSERT INTO balances (user_id, asset, available_balance, locked_balance, last_updated)
         SELECT u.user_id, u.asset, u.available, u.locked, now()
           FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[]) AS u(user_id, asset, available, locked)
         ON CONFLICT (user_id, asset) DO UPDATE
           SET available_balance = EXCLUDED.available_balance, locked_balance = EXCLUDED.locked_balance, last_updated = now())
       INSERT INTO balance_history (user_id, asset, change_type, amount, balance_before, balance_after,
                                    locked_change, locked_before, locked_after, reference_id, description, event_id, created_at)
       SELECT * FROM unnest($5::text[], $6::text[], $7::text[], $8::numeric[], $9::numeric[], $10::numeric[],
                            $11::numeric[], $12::numeric[], $13::numeric[], $14::text[], $15::text[], $16::text[], $17::timestamptz[])`,
      [
        changed.map((b) => b.userId), changed.map((b) => b.asset), changed.map((b) => b.available), changed.map((b) => b.locked),
        ...Array.from({ length: 13 }, (_, i) => column(i)),
      ],
    );
  }
  effects.balances.push(...changed.map((b) => ({ userId: b.userId, asset: b.asset, available: b.available, locked: b.locked })));
  return { rejected };
}

/**
 * Fee changes sent without their amount (docs/FEES.md) get their trade's fee; those whose trade
 * is not stored yet are kept in pending_fee_charges, to be charged when it arrives (trades.ts),
 * and are left out here; one whose user is not the side that pays in its asset is refused.
 */
async function withTradeFees(tx: Queryable, entries: Entry<'BALANCE_UPDATE'>[], users: Set<string>, rejected: ApplyResult['rejected']): Promise<Entry<'BALANCE_UPDATE'>[]> {
  const open = entries.filter((e) => e.event.data.feeOfTrade && users.has(e.event.data.userId));
  if (open.length === 0) return entries;
  const charges = open.map((e) => ({ userId: e.event.data.userId, asset: e.event.data.asset, market: e.event.data.market!, tradeId: e.event.data.referenceId! }));
  await lockFeeMarkets(tx, charges.map((c) => c.market));
  const fees = await storedTradeFees(tx, charges);
  const resolved = new Map<Entry<'BALANCE_UPDATE'>, Entry<'BALANCE_UPDATE'> | null>();
  const pending: Entry<'BALANCE_UPDATE'>[] = [];
  open.forEach((e, i) => {
    const found = fees.get(i);
    if (!found) {
      pending.push(e);
      resolved.set(e, null);
    } else if ('refused' in found) {
      rejected.push({ key: e.key, reason: found.refused });
      resolved.set(e, null);
    } else {
      resolved.set(e, { ...e, event: { ...e.event, data: { ...e.event.data, availableChange: charge(found.fee), feeOfTrade: false } } });
    }
  });
  await keepPending(tx, pending);
  return entries.flatMap((e) => (resolved.has(e) ? (resolved.get(e) ? [resolved.get(e)!] : []) : [e]));
}

const sign = (change: string) => (change.startsWith('-') ? `- ${change.slice(1)}` : `+ ${change}`);
