import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { benchmarkMetrics, drawdownCurve, percentile, periodReturns, returnMetrics, tradeMetrics, type Metric } from '../src/analytics/metrics.ts';

/**
 * Reference values computed independently of the implementation: numpy 2.4 following
 * empyrical's definitions (sample deviation, downside deviation against 0, drawdown from the
 * running peak, numpy's percentile, the mean of the returns up to the cutoff's rank, beta from
 * the benchmark's residuals), for fixed series: mixed, flat, steadily falling, a single value and
 * a single return. Compared to 1e-9 relative (1e-12 absolute near zero).
 */
const SERIES = {"mixed": [100000.0, 100102.460307, 100800.666033, 100348.801131, 98661.753466, 97863.242881, 96020.191171, 96231.711366, 98907.367211, 98032.617561, 96914.114607, 97960.480894, 98757.657834, 99064.624778, 97320.160048, 97360.544368, 98811.806862, 96254.133305, 95469.439269, 91934.73533, 89655.603849, 86442.822114, 86122.82612, 84025.827487, 84565.717559, 84915.398639, 84682.847724, 80505.002985, 79718.158524, 79720.548561, 79980.9302, 77613.277493, 76949.290819, 75520.313128, 74374.160609, 76026.603662, 74874.747891, 74900.92155, 76300.654793, 75486.373545, 75393.220417, 75635.178587, 75807.296683, 74025.74057, 74212.49305, 76303.539018, 74018.79027, 75365.018399, 75620.285785, 74725.74258, 77790.12056, 79053.836179, 77236.722247, 77429.066755, 78399.546547, 78181.937433, 79327.944326, 79301.738625, 80439.318197, 82834.033045], "benchmark": [20000.0, 19807.301325, 19877.55939, 19749.356812, 19796.933529, 19454.289829, 19294.968456, 19247.832014, 19516.944771, 19861.971763, 19477.584674, 19255.157757, 19451.628748, 18880.017413, 18758.287595, 18740.292697, 19103.015272, 19310.112178, 19224.989317, 19128.313797, 19066.090712, 19511.340003, 19395.825571, 19317.171506, 19428.995444, 19403.513215, 19355.794865, 19042.017936, 19048.248065, 18931.030511, 19271.636034, 19470.063111, 19472.746978, 19677.711569, 19587.2326, 19906.149872, 19914.49068, 20098.714362, 19719.5843, 19831.989889, 19339.699179, 18758.929286, 18682.633847, 18439.779894, 18494.376246, 19126.354039, 18897.299735, 18729.88565, 18796.95848, 18945.364214, 18904.705739, 18855.762307, 19063.872306, 19222.076034, 18933.646141, 18920.625098, 18940.100149, 18649.989534, 18732.004476, 18500.30181], "flat": [1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0], "negative": [1000.0, 990.0, 980.1, 970.299, 960.59601, 950.9900498999999, 941.480149401, 932.0653479069899, 922.7446944279201, 913.5172474836409, 904.3820750088045, 895.3382542587163], "single": [500.0], "two": [500.0, 510.0]} as const;
const REFERENCE: Record<string, Record<string, number | null>> = {"mixed365": {"totalReturn": -0.17165966955, "annualReturn": -0.6881084303759754, "maxDrawdown": -0.26569145638613323, "calmarRatio": -2.5898778972250334, "volatility": 0.34187638791695313, "sharpeRatio": -3.233731253460768, "sortinoRatio": -3.993875831630447, "var95": -0.03053207429057085, "cvar95": -0.04073144992301518}, "mixed252rf": {"totalReturn": -0.17165966955, "annualReturn": -0.5526426623421365, "maxDrawdown": -0.26569145638613323, "calmarRatio": -2.0800166849888204, "volatility": 0.28406841295916707, "sharpeRatio": -2.8277498731316437, "sortinoRatio": -3.470276269626108, "var95": -0.03053207429057085, "cvar95": -0.04073144992301518}, "flat": {"totalReturn": 0.0, "annualReturn": 0.0, "maxDrawdown": 0.0, "calmarRatio": null, "volatility": 0.0, "sharpeRatio": null, "sortinoRatio": null, "var95": 0.0, "cvar95": 0.0}, "negative": {"totalReturn": -0.10466174574128362, "annualReturn": -0.920554548309446, "maxDrawdown": -0.10466174574128362, "calmarRatio": -8.795520672710651, "volatility": 6.62570813303961e-16, "sharpeRatio": null, "sortinoRatio": -15.874507866387544, "var95": -0.010000000000000071, "cvar95": -0.01000000000000008}, "single": {}, "two": {"totalReturn": 0.020000000000000018, "annualReturn": 1376.4082919660768, "maxDrawdown": 0.0, "calmarRatio": null}};
const BENCH: Record<string, Record<string, number>> = {"bench365": {"beta": 0.10689068334996069, "alpha": -0.653067012653483, "marketCorrelation": 0.07546535323433397}, "bench252rf": {"beta": 0.10689068334996069, "alpha": -0.5354639176959184, "marketCorrelation": 0.07546535323433397}};
const DAY = 86_400_000;
const days = (n: number) => Array.from({ length: n }, (_, i) => Date.UTC(2026, 0, 1) + i * DAY);

function close(actual: Metric | undefined, expected: number | null | undefined, what: string) {
  if (expected === null || expected === undefined) {
    assert.equal(actual?.value ?? null, null, `${what}: expected none, got ${actual?.value}`);
    assert.ok(actual?.reason, `${what}: a reason for none`);
    return;
  }
  const a = actual?.value;
  assert.ok(typeof a === 'number', `${what}: expected ${expected}, got ${a} (${actual?.reason})`);
  const ok = Math.abs(a - expected) <= 1e-9 * Math.max(Math.abs(a), Math.abs(expected)) || Math.abs(a - expected) <= 1e-12;
  assert.ok(ok, `${what}: ${a} is not ${expected}`);
}

describe('analytics metrics (empyrical definitions)', () => {
  const check = (name: string, equity: readonly number[], periodsPerYear: number, riskFree = 0) => {
    const got = returnMetrics(equity, days(equity.length), { periodsPerYear, riskFree });
    for (const key of ['totalReturn', 'annualReturn', 'volatility', 'sharpeRatio', 'sortinoRatio', 'calmarRatio', 'maxDrawdown', 'var95', 'cvar95']) {
      close(got[key], REFERENCE[name]![key], `${name} ${key}`);
    }
    return got;
  };

  it('matches the reference for mixed, flat, falling, single-value and single-return series', () => {
    check('mixed365', SERIES.mixed, 365);
    check('mixed252rf', SERIES.mixed, 252, 0.04);
    const flat = check('flat', SERIES.flat, 365);
    assert.match(flat.sharpeRatio!.reason!, /do not vary/);
    check('negative', SERIES.negative, 252);
    const single = check('single', SERIES.single, 365);
    assert.match(single.totalReturn!.reason!, /at least two values/);
    const two = check('two', SERIES.two, 365);
    assert.match(two.volatility!.reason!, /two returns/);
  });

  it('matches the reference for beta, alpha and correlation against a benchmark', () => {
    const r = periodReturns(SERIES.mixed);
    const b = periodReturns(SERIES.benchmark);
    for (const [name, options] of [['bench365', { periodsPerYear: 365 }], ['bench252rf', { periodsPerYear: 252, riskFree: 0.04 }]] as const) {
      const got = benchmarkMetrics(r, b, options);
      for (const key of ['beta', 'alpha', 'marketCorrelation']) close(got[key], BENCH[name]![key], `${name} ${key}`);
    }
    assert.match(benchmarkMetrics(r.slice(0, 5), Array(5).fill(0.01), { periodsPerYear: 365 }).beta!.reason!, /benchmark does not vary/);
    assert.match(benchmarkMetrics([0.1], [0.2], { periodsPerYear: 365 }).beta!.reason!, /at least two periods/);
    assert.throws(() => benchmarkMetrics([0.1, 0.2], [0.1], { periodsPerYear: 365 }), /same periods/);
  });

  it('measures the longest drawdown in minutes across gaps in the curve, to the recovery or the end', () => {
    // Peak on day 0, below it on days 1, 3 (day 2 missing), recovered on day 5; then below again until the end (day 9).
    const times = [0, 1, 3, 5, 6, 9].map((d) => Date.UTC(2026, 0, 1) + d * DAY);
    const got = returnMetrics([100, 90, 95, 101, 99, 100], times, { periodsPerYear: 365 });
    close(got.maxDrawdownDuration, 5 * 24 * 60, 'recovered after 5 days');
    close(got.maxDrawdown, 0.9 - 1, 'max drawdown');
    const open = returnMetrics([100, 90, 80], [0, 1, 30].map((d) => d * DAY), { periodsPerYear: 365 });
    close(open.maxDrawdownDuration, 30 * 24 * 60, 'not recovered: to the end');
    assert.deepEqual(drawdownCurve([100, 50, 100], [0, 1, 2]).map((p) => p.drawdown), [0, -0.5, 0]);
    assert.match(returnMetrics([100, 0, 50], [0, 1, 2], { periodsPerYear: 365 }).sharpeRatio!.reason!, /not positive/);
    assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  });

  it('counts round trips exactly: win rate, profit factor, gross, average and extreme wins and losses, durations', () => {
    const h = 3_600_000;
    const got = tradeMetrics([
      { pnl: '10.5', entryTime: 0, exitTime: h },
      { pnl: '-4.25', entryTime: 0, exitTime: 2 * h },
      { pnl: '0.1', entryTime: 0, exitTime: 3 * h },
      { pnl: '0.2', entryTime: 0, exitTime: 4 * h },
      { pnl: '-0.75', entryTime: 0, exitTime: 6 * h },
      { pnl: '0', entryTime: 0, exitTime: 2 * h },
    ]);
    assert.deepEqual(
      [got.totalTrades, got.winningTrades, got.losingTrades, got.grossProfit, got.grossLoss, got.avgWin, got.avgLoss, got.largestWin, got.largestLoss],
      [6, 3, 2, '10.8', '-5', '3.6', '-2.5', '10.5', '-4.25'],
    );
    close(got.winRate as Metric, 0.5, 'win rate');
    close(got.profitFactor as Metric, 10.8 / 5, 'profit factor');
    close(got.avgTradeDuration as Metric, (1 + 2 + 3 + 4 + 6 + 2) * 60 / 6, 'average duration');
    close(got.longestTradeDuration as Metric, 360, 'longest duration');
    const none = tradeMetrics([]);
    assert.equal((none.winRate as Metric).value, null);
    assert.match((tradeMetrics([{ pnl: '1', entryTime: 0, exitTime: 1 }]).profitFactor as Metric).reason!, /no losing round trip/);
  });
});

it('takes a curve of 300,000 periods without overflowing the call stack', () => {
  const equity = Array.from({ length: 300_000 }, (_, i) => 1000 + Math.sin(i / 50) * 10 + i / 1000);
  const m = returnMetrics(equity, equity.map((_, i) => i * 86_400_000), { periodsPerYear: 365 });
  assert.ok(m.maxDrawdown!.value! < 0);
});
