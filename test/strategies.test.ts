import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { InvalidArgumentError, NotFoundError } from '../src/store/errors.ts';
import { eachBackend } from './helpers/backends.ts';

eachBackend('strategies: managed, versioned', (get) => {
  let store: Store;
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com'), ('bob', 'b@example.com')`);
    store = storeOver(db, new MemoryBus());
  });

  it('keeps every configuration change as a version: three changes give versions 1 to 3, each readable', async () => {
    const created = await store.strategies.create({ name: 'ema cross', type: 'ema_crossover', timeframe: '1h', symbols: ['TATA_INR'], config: { fast: 9, slow: 21 }, userId: 'alice' }, 'alice');
    assert.deepEqual([created.version, created.isActive, created.executionMode, created.userId], ['1', false, 'paper', 'alice']);
    await store.strategies.update(created.id, { config: { fast: 12, slow: 26 } }, 'alice');
    // State is not configuration: enabling and switching to live add no version.
    await store.strategies.update(created.id, { isActive: true, executionMode: 'live' }, 'alice');
    const third = await store.strategies.update(created.id, { symbols: ['TATA_INR', 'RELIANCE_INR'], timeframe: '4h' }, 'bob');
    assert.deepEqual([third.version, third.isActive, third.executionMode, third.symbols], ['3', true, 'live', ['TATA_INR', 'RELIANCE_INR']]);
    const versions = await store.strategies.versions(created.id);
    assert.deepEqual(versions.map((v) => [v.version, v.configuration.config, v.configuration.timeframe, v.createdBy]), [
      [1, { fast: 9, slow: 21 }, '1h', 'alice'],
      [2, { fast: 12, slow: 26 }, '1h', 'alice'],
      [3, { fast: 12, slow: 26 }, '4h', 'bob'],
    ]);
    // The cached strategy and the active list follow each change.
    assert.ok((await store.strategies.active('alice')).some((s) => s.id === created.id && s.version === '3'));
    await store.strategies.update(created.id, { isActive: false });
    assert.ok(!(await store.strategies.active('alice')).some((s) => s.id === created.id));
    await assert.rejects(store.strategies.update(created.id, { name: 'x' }, 'bob', 'bob'), NotFoundError, "another owner's strategy is not found");
  });

  it('refuses a configuration that fails the checks, naming the field', async () => {
    const bad = async (input: object, field: string) =>
      assert.rejects(store.strategies.create({ name: 'n', symbols: ['TATA_INR'], ...input } as never), (e: Error) => e instanceof InvalidArgumentError && e.parameter === field);
    await bad({ symbols: [] }, 'symbols');
    await bad({ timeframe: '2h' }, 'timeframe');
    await bad({ config: [1, 2] }, 'config');
    await bad({ name: '  ' }, 'name');
    await bad({ executionMode: 'real' }, 'executionMode');
    await store.strategies.create({ name: 'twice', symbols: ['TATA_INR'] });
    await bad({ name: 'twice' }, 'name');
  });

  it('versions a strategy made without the library from its configuration so far, and gives an unowned one an owner', async () => {
    const seeded = (await store.strategies.list()).find((s) => s.userId === null)!;
    assert.ok(seeded, 'the seeds have strategies with no owner');
    const updated = await store.strategies.update(seeded.id, { config: { tuned: true }, userId: 'bob' }, 'bob');
    assert.equal(updated.userId, 'bob');
    const versions = await store.strategies.versions(seeded.id);
    assert.deepEqual(versions.map((v) => v.version), [Number(seeded.version), Number(seeded.version) + 1]);
    assert.deepEqual(versions[0]!.configuration.config, seeded.config);
    assert.deepEqual(versions[1]!.configuration.config, { tuned: true });
  });
});
