import type { Queryable } from '../../database/types.ts';
import { BacktestStateError, completeRun, failRun, reportProgress, startRun, storeEquity, storeTrades } from '../../store/backtestRuns.ts';
import type { EventOf } from '../events/catalogue.ts';
import type { ApplyResult, Entry } from './types.ts';

type BacktestEvent = 'BACKTEST_STARTED' | 'BACKTEST_PROGRESS' | 'BACKTEST_TRADES' | 'BACKTEST_EQUITY' | 'BACKTEST_COMPLETED' | 'BACKTEST_FAILED';

/**
 * A backtest engine's reports, applied in emission order (one ordering key per backtest) with
 * the same state machine as the library's (src/store/backtestRuns.ts). A report the backtest's
 * state does not allow is dead-lettered with the reason; nothing of it is written.
 */
export async function applyBacktests(tx: Queryable, entries: Entry<BacktestEvent>[]): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  for (const entry of entries) {
    try {
      await applyOne(tx, entry.event as EventOf<BacktestEvent>);
    } catch (error) {
      if (!(error instanceof BacktestStateError)) throw error;
      rejected.push({ key: entry.key, reason: error.message });
    }
  }
  return { rejected };
}

async function applyOne(tx: Queryable, event: EventOf<BacktestEvent>): Promise<void> {
  switch (event.type) {
    case 'BACKTEST_STARTED': {
      const d = event.data as EventOf<'BACKTEST_STARTED'>['data'];
      return startRun(tx, d.backtestId, d.timestamp);
    }
    case 'BACKTEST_PROGRESS': {
      const d = event.data as EventOf<'BACKTEST_PROGRESS'>['data'];
      return reportProgress(tx, d.backtestId, d.progress);
    }
    case 'BACKTEST_TRADES': {
      const d = event.data as EventOf<'BACKTEST_TRADES'>['data'];
      await storeTrades(tx, d.backtestId, d.seq, d.trades);
      return;
    }
    case 'BACKTEST_EQUITY': {
      const d = event.data as EventOf<'BACKTEST_EQUITY'>['data'];
      await storeEquity(tx, d.backtestId, d.seq, d.points);
      return;
    }
    case 'BACKTEST_COMPLETED': {
      const d = event.data as EventOf<'BACKTEST_COMPLETED'>['data'];
      await completeRun(tx, d.backtestId, { at: d.timestamp, summary: d.summary, executionTimeMs: d.executionTimeMs, dataPointsProcessed: d.dataPointsProcessed, details: d.details ?? null });
      return;
    }
    case 'BACKTEST_FAILED': {
      const d = event.data as EventOf<'BACKTEST_FAILED'>['data'];
      return failRun(tx, d.backtestId, d.error, d.timestamp);
    }
  }
}
