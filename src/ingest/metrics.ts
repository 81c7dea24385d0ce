import type { BatchOutcome } from './apply/batch.ts';

/** Counters of one worker, read by /metrics and /health. */
export class IngestMetrics {
  eventsApplied = 0;
  duplicates = 0;
  deadLettered = 0;
  batches = 0;
  lastBatchSize = 0;
  lastBatchMs = 0;
  private readonly window: { at: number; count: number }[] = [];
  /** Milliseconds from XADD (a stream id starts with its append time) to commit, most recent last. */
  private latencies: number[] = [];

  recordCommit(entryIds: string[], committedAt = Date.now()): void {
    for (const id of entryIds) this.latencies.push(committedAt - Number(id.slice(0, id.indexOf('-'))));
    if (this.latencies.length > 200_000) this.latencies = this.latencies.slice(-100_000);
  }

  /** Latency percentiles (0-100) over the recorded commits, then forgets them. */
  takeLatencyPercentiles(...percentiles: number[]): number[] {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    this.latencies = [];
    return percentiles.map((p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : Number.NaN));
  }

  /** Called with each batch's duration (the /metrics histogram). */
  onBatch: ((ms: number) => void) | null = null;

  recordBatch(size: number, outcome: BatchOutcome, ms: number): void {
    this.onBatch?.(ms);
    this.batches += 1;
    this.lastBatchSize = size;
    this.lastBatchMs = ms;
    this.eventsApplied += outcome.applied.length;
    this.duplicates += outcome.duplicates.length;
    const now = Date.now();
    this.window.push({ at: now, count: outcome.applied.length });
    while (this.window.length && this.window[0]!.at < now - 10_000) this.window.shift();
  }

  /** Events applied per second over the last 10 seconds. */
  eventsPerSecond(): number {
    const now = Date.now();
    const recent = this.window.filter((w) => w.at >= now - 10_000);
    return recent.reduce((sum, w) => sum + w.count, 0) / 10;
  }
}
