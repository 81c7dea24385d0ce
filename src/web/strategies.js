// The strategy page: the strategies a key may see, and for the chosen one its equity and drawdown
// curves, its metrics, its open positions and its last round trips. The API key comes from the URL
// fragment (#key=…, which the browser never sends to the server) or the form, and stays in this
// tab's sessionStorage; it is sent in the X-API-Key header only.
(() => {
  const $ = (id) => document.getElementById(id);
  const STORED = 'tradestore.apiKey';
  // Every time on the page in one format, in the viewer's time zone.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const day = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: '2-digit', day: '2-digit' });
  const dateTime = (ms) => `${day.format(new Date(ms))} ${clock.format(new Date(ms))}`;
  const ms = (t) => (typeof t === 'number' ? t : Date.parse(t));
  $('zone').textContent = zone;

  const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const fixed = (v, digits = 2) => Number(v).toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const plain = (v) => { const n = Number(v); return Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: 8 }) : String(v); };
  const signed = (v, digits = 2) => `${Number(v) > 0 ? '+' : ''}${fixed(v, digits)}`;
  const percent = (fraction, digits = 2, sign = false) => `${(sign ? signed : fixed)(Number(fraction) * 100, digits)} %`;
  const tone = (v) => (Number(v) > 0 ? 'up' : Number(v) < 0 ? 'down' : '');
  const minutes = (m) => {
    const total = Math.round(Number(m));
    const [d, h, mm] = [Math.floor(total / 1440), Math.floor((total % 1440) / 60), total % 60];
    return d ? `${d}d ${h}h` : h ? `${h}h ${mm}m` : `${mm}m`;
  };
  const dash = (reason) => `<span title="${esc(reason)}">—</span><small title="${esc(reason)}">${esc(reason)}</small>`;

  // --- The key: the fragment's, kept in sessionStorage and taken out of the address bar. ---
  function keyFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const key = params.get('key');
    if (key === null) return false;
    params.delete('key');
    if (key) sessionStorage.setItem(STORED, key);
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
    return true;
  }
  const selected = () => new URLSearchParams(location.hash.slice(1)).get('strategy');

  async function api(path) {
    const response = await fetch(path, { headers: { 'X-API-Key': sessionStorage.getItem(STORED) ?? '' }, cache: 'no-store' });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw Object.assign(new Error(body?.error?.message ?? `HTTP ${response.status}`), { status: response.status });
    return body;
  }

  function askForKey(message = '') {
    sessionStorage.removeItem(STORED);
    $('key-section').hidden = false;
    $('list-section').hidden = true;
    $('strategy').hidden = true;
    $('forget').hidden = true;
    $('key-error').textContent = message;
    $('key').focus();
  }
  $('key-form').onsubmit = (event) => {
    event.preventDefault();
    sessionStorage.setItem(STORED, $('key').value.trim());
    $('key').value = '';
    start();
  };
  $('forget').onclick = () => askForKey();

  // --- The list. ---
  let strategies = [];
  function showList() {
    const id = selected();
    $('list').tBodies[0].innerHTML = strategies.map((s) => `
      <tr data-id="${esc(s.id)}" class="${s.id === id ? 'selected' : ''}">
        <td><a href="#strategy=${encodeURIComponent(s.id)}">${esc(s.name)}</a></td>
        <td class="text"><span class="badge ${esc(s.executionMode)}">${esc(s.executionMode.toUpperCase())}</span></td>
        <td class="text">${s.isActive ? '<span class="up">● enabled</span>' : '<span class="muted">○ disabled</span>'}</td>
        <td>${s.totalTrades}</td>
        <td>${s.totalTrades ? percent(s.winningTrades / s.totalTrades, 1) : '—'}</td>
        <td class="${tone(s.totalPnl)}">${signed(s.totalPnl)}</td>
        <td title="${s.maxDrawdown === null ? 'no initial capital to measure it from' : 'of realized equity from its running peak, as the ingest moved it close by close'}">${s.maxDrawdown === null ? '—' : percent(s.maxDrawdown)}</td>
      </tr>`).join('');
    listNote();
  }
  function listNote() {
    const chosen = strategies.some((s) => s.id === selected());
    $('list-note').textContent = strategies.length ? `· ${strategies.length}${chosen ? '' : ', choose one'}` : '· none that this key may see';
  }
  $('list').tBodies[0].onclick = (event) => {
    const row = event.target.closest('tr');
    if (row && !event.target.closest('a')) location.hash = `strategy=${encodeURIComponent(row.dataset.id)}`;
  };

  // --- The charts: equity above, drawdown (percent) below, on one time axis. ---
  let charts = null;
  function makeCharts() {
    const options = {
      autoSize: true,
      layout: { background: { color: '#101418' }, textColor: '#d8dee4' },
      grid: { vertLines: { color: '#1c2128' }, horzLines: { color: '#1c2128' } },
      rightPriceScale: { minimumWidth: 96, borderColor: '#2b323b' },
      timeScale: { borderColor: '#2b323b' },
    };
    const top = LightweightCharts.createChart($('equity'), {
      ...options, timeScale: { ...options.timeScale, visible: false }, localization: { priceFormatter: (v) => Math.round(v).toLocaleString('en') },
    });
    const bottom = LightweightCharts.createChart($('drawdown'), options);
    const equity = top.addSeries(LightweightCharts.AreaSeries, {
      lineColor: '#58a6ff', topColor: 'rgba(88,166,255,.35)', bottomColor: 'rgba(88,166,255,.02)', lineWidth: 2,
      priceFormat: { type: 'price', precision: 0, minMove: 1 },
    });
    const drawdown = bottom.addSeries(LightweightCharts.BaselineSeries, {
      baseValue: { type: 'price', price: 0 }, lineWidth: 1,
      bottomLineColor: '#f85149', bottomFillColor1: 'rgba(248,81,73,.08)', bottomFillColor2: 'rgba(248,81,73,.45)',
      topLineColor: '#f85149', topFillColor1: 'rgba(0,0,0,0)', topFillColor2: 'rgba(0,0,0,0)',
      priceFormat: { type: 'custom', minMove: 0.01, formatter: (v) => `${v.toFixed(1)} %` },
    });
    // One time axis: scrolling or zooming either chart moves the other; the crosshair follows.
    const pairs = [[top, bottom, drawdown], [bottom, top, equity]];
    let syncing = false;
    for (const [from, to, series] of pairs) {
      from.timeScale().subscribeVisibleLogicalRangeChange((range) => {
        if (syncing || !range) return;
        syncing = true;
        to.timeScale().setVisibleLogicalRange(range);
        syncing = false;
      });
      from.subscribeCrosshairMove((param) => {
        if (!param.sourceEvent) return;
        const point = param.time === undefined ? undefined : series.data().find((p) => p.time === param.time);
        if (point) to.setCrosshairPosition(point.value, point.time, series);
        else to.clearCrosshairPosition();
      });
    }
    return { top, bottom, equity, drawdown, capitalLine: null };
  }

  function showCurves(strategy, curve) {
    charts ??= makeCharts();
    // Each point is a UTC day (its closing equity): drawn as that calendar day.
    const days = curve.points.map((p) => ({ time: p.time.slice(0, 10), equity: Number(p.equity), drawdown: Number(p.drawdown) * 100 }));
    charts.equity.setData(days.map((p) => ({ time: p.time, value: p.equity })));
    charts.drawdown.setData(days.map((p) => ({ time: p.time, value: p.drawdown })));
    if (charts.capitalLine) charts.equity.removePriceLine(charts.capitalLine);
    charts.capitalLine = strategy.initialCapital === null ? null : charts.equity.createPriceLine({
      price: Number(strategy.initialCapital), color: '#8b949e', lineWidth: 1, lineStyle: LightweightCharts.LineStyle.Dashed, axisLabelVisible: true, title: 'capital',
    });
    charts.top.timeScale().fitContent();
    charts.bottom.timeScale().fitContent();
    $('equity').dataset.points = String(days.length);
    $('drawdown').dataset.points = String(days.length);
    $('equity-note').hidden = days.length > 0;
    $('equity-note').textContent = curve.reason ?? '';
    $('equity-source').textContent = {
      snapshots: '· each UTC day’s closing portfolio snapshot',
      trades: '· initial capital plus realized P&L by UTC exit day (no portfolio snapshots)',
      trades_then_snapshots: '· initial capital plus realized P&L by UTC exit day, then each day’s closing portfolio snapshot',
    }[curve.source] ?? '';
  }

  function showTitle(strategy, curve) {
    const last = curve.points.at(-1);
    const capital = strategy.initialCapital;
    const change = last && capital ? Number(last.equity) / Number(capital) - 1 : null;
    $('title').innerHTML = [
      `<strong>${esc(strategy.name)}</strong>`,
      `<span class="badge ${esc(strategy.executionMode)}">${esc(strategy.executionMode.toUpperCase())}</span>`,
      strategy.isActive ? '<span class="up">● enabled</span>' : '<span class="muted">○ disabled</span>',
      `<span class="muted">${esc(strategy.symbols.join(', '))}${strategy.timeframe ? ` · ${esc(strategy.timeframe)}` : ''}${strategy.type ? ` · ${esc(strategy.type)}` : ''} · version ${esc(strategy.version)}</span>`,
      capital !== null ? `<span>Capital <strong>${fixed(capital)}</strong></span>` : '<span class="muted">no initial capital</span>',
      last ? `<span>Equity <strong>${fixed(last.equity)}</strong>${change === null ? '' : ` <span class="${tone(change)}">(${percent(change, 2, true)})</span>`}</span>` : '',
      `<span class="muted">created ${esc(day.format(new Date(ms(strategy.createdAt))))}</span>`,
    ].join('');
  }

  // Each metric's label and unit (docs/ANALYTICS.md); fractions are shown as percentages.
  const METRICS = {
    totalReturn: ['Total return', 'pct'], annualReturn: ['Annual return', 'pct'], volatility: ['Volatility (annual)', 'pct'],
    sharpeRatio: ['Sharpe ratio', 'ratio'], sortinoRatio: ['Sortino ratio', 'ratio'], calmarRatio: ['Calmar ratio', 'ratio'],
    maxDrawdown: ['Max drawdown', 'pct'], maxDrawdownDuration: ['Longest drawdown', 'minutes'],
    var95: ['VaR 95 % (one day)', 'pct'], cvar95: ['CVaR 95 % (one day)', 'pct'],
    beta: ['Beta', 'ratio'], alpha: ['Alpha (annual)', 'pct'], marketCorrelation: ['Market correlation', 'ratio'],
    totalTrades: ['Round trips', 'count'], winningTrades: ['Winners', 'count'], losingTrades: ['Losers', 'count'], winRate: ['Win rate', 'pct'],
    profitFactor: ['Profit factor', 'ratio'], grossProfit: ['Gross profit', 'money'], grossLoss: ['Gross loss', 'money'],
    avgWin: ['Average win', 'money'], avgLoss: ['Average loss', 'money'], largestWin: ['Largest win', 'money'], largestLoss: ['Largest loss', 'money'],
    avgTradeDuration: ['Average holding time', 'minutes'], longestTradeDuration: ['Longest holding time', 'minutes'],
  };
  const UNITS = { pct: (v) => percent(v), ratio: (v) => fixed(v), count: (v) => plain(v), money: (v) => fixed(v), minutes: (v) => minutes(v) };

  function showMetrics(m) {
    $('metrics').tBodies[0].innerHTML = Object.entries(m.metrics).map(([name, value]) => {
      const [label, unit] = METRICS[name] ?? [name, null];
      const shown = value === null ? dash(m.reasons[name] ?? 'not computed') : unit ? UNITS[unit](value) : esc(value);
      return `<tr data-metric="${esc(name)}"><td>${esc(label)}</td><td class="value">${shown}</td></tr>`;
    }).join('');
    $('metrics-note').textContent = `· ${m.equityDays} days, ${m.periodsPerYear} periods a year${m.benchmark ? `, against ${m.benchmark}` : ''}`;
  }

  async function showPositions(page) {
    // Last prices of the venue's own markets (public market data; 0 when a market has no trade yet), for the unrealized P&L.
    const symbols = [...new Set(page.items.filter((t) => t.exchange === 'venue').map((t) => t.symbol))];
    const last = new Map(await Promise.all(symbols.map((s) => fetch(`/api/v3/ticker/price?symbol=${encodeURIComponent(s)}`)
      .then((r) => (r.ok ? r.json() : null)).then((t) => [s, Number(t?.price) > 0 ? t.price : null]).catch(() => [s, null]))));
    const now = Date.now();
    $('positions').tBodies[0].innerHTML = page.items.map((t) => {
      const price = last.get(t.symbol) ?? null;
      const unrealized = price === null ? null : (Number(price) - Number(t.entryPrice)) * Number(t.quantity) * (t.side === 'sell' ? -1 : 1);
      return `<tr>
        <td>${dateTime(ms(t.entryTime))}</td><td class="text">${esc(t.symbol)}</td><td class="text ${t.side === 'buy' ? 'up' : 'down'}">${esc(t.side)}</td>
        <td>${plain(t.quantity)}</td><td>${plain(t.entryPrice)}</td><td>${price === null ? '—' : plain(price)}</td>
        <td class="${tone(unrealized)}">${unrealized === null ? '—' : signed(unrealized)}</td><td>${minutes((now - ms(t.entryTime)) / 60_000)}</td>
      </tr>`;
    }).join('') || '<tr><td class="muted" colspan="8">none</td></tr>';
    $('positions-note').textContent = `· ${page.total}${page.total > page.items.length ? `, the newest ${page.items.length} shown` : ''}`;
  }

  function showTrips(page) {
    $('trips').tBodies[0].innerHTML = page.items.map((t) => `<tr>
        <td>${dateTime(ms(t.entryTime))}</td><td>${t.exitTime ? dateTime(ms(t.exitTime)) : '—'}</td><td class="text">${esc(t.symbol)}</td>
        <td class="text ${t.side === 'buy' ? 'up' : 'down'}">${esc(t.side)}</td><td>${plain(t.quantity)}</td><td>${plain(t.entryPrice)}</td>
        <td>${t.exitPrice === null ? '—' : plain(t.exitPrice)}</td><td>${fixed(t.fees)}</td>
        <td class="${tone(t.pnl)}">${t.pnl === null ? '—' : signed(t.pnl)}</td><td class="${tone(t.pnl)}">${t.pnlPercent === null ? '—' : `${signed(t.pnlPercent)} %`}</td>
        <td class="text muted">${esc(t.exitReason ?? '')}</td>
      </tr>`).join('') || '<tr><td class="muted" colspan="11">none</td></tr>';
    $('trips-note').textContent = `· the newest ${page.items.length} of ${page.total} closed, by entry`;
  }

  // --- One strategy's page. ---
  let loading = 0;
  async function showSelected() {
    const id = selected();
    for (const row of $('list').tBodies[0].rows) row.classList.toggle('selected', row.dataset.id === id);
    listNote();
    const strategy = strategies.find((s) => s.id === id);
    if (!strategy) {
      $('strategy').hidden = true;
      return;
    }
    const ticket = ++loading;
    const base = `/v1/strategies/${encodeURIComponent(id)}`;
    const [curve, metrics, open, closed] = await Promise.all([
      api(`${base}/equity`), api(`${base}/metrics`), api(`${base}/trades?status=open&limit=100`), api(`${base}/trades?status=closed&limit=20`),
    ]);
    if (ticket !== loading) return;
    // Shown before drawing, so the charts have their size.
    $('strategy').hidden = false;
    showTitle(strategy, curve);
    showCurves(strategy, curve);
    showMetrics(metrics);
    showTrips(closed);
    await showPositions(open);
  }

  function failed(error) {
    if (error.status === 401 || error.status === 403) return askForKey(`The key was refused: ${error.message}`);
    $('list-section').hidden = false;
    $('list-note').textContent = `· could not load: ${error.message}`;
    $('list-note').className = 'down';
  }

  async function start() {
    if (!sessionStorage.getItem(STORED)) return askForKey();
    try {
      ({ strategies } = await api('/v1/strategies?status=all'));
      $('key-section').hidden = true;
      $('forget').hidden = false;
      $('list-section').hidden = false;
      $('list-note').className = 'muted';
      // A key that sees one strategy goes straight to it.
      if (!selected() && strategies.length === 1) history.replaceState(null, '', `#strategy=${encodeURIComponent(strategies[0].id)}`);
      showList();
      await showSelected();
    } catch (error) {
      failed(error);
    }
  }

  window.addEventListener('hashchange', () => {
    if (keyFromFragment()) start();
    else showSelected().catch(failed);
  });
  keyFromFragment();
  start();
})();
