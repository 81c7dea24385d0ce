// The live dashboard: REST for the first picture, Binance market streams for what follows.
(() => {
  const $ = (id) => document.getElementById(id);
  const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'];
  // Every time on the page in one format, in the viewer's time zone.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const day = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: '2-digit', day: '2-digit' });
  const time = (ms) => clock.format(new Date(ms));
  const dateTime = (ms) => `${day.format(new Date(ms))} ${time(ms)}`;
  $('zone').textContent = zone;

  const chart = LightweightCharts.createChart($('chart'), {
    layout: { background: { color: '#101418' }, textColor: '#d8dee4' },
    grid: { vertLines: { color: '#1c2128' }, horzLines: { color: '#1c2128' } },
    localization: { timeFormatter: (t) => dateTime(t * 1000) },
    timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: (t) => time(t * 1000).slice(0, 5) },
  });
  const series = chart.addSeries(LightweightCharts.CandlestickSeries, {});
  // Volume bars under the candles, on a scale of their own in the chart's lower fifth.
  const volume = chart.addSeries(LightweightCharts.HistogramSeries, { priceFormat: { type: 'volume' }, priceScaleId: 'volume' });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  series.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
  new ResizeObserver(() => chart.applyOptions({ width: $('chart').clientWidth, height: $('chart').clientHeight })).observe($('chart'));
  let socket = null;
  let candles = 0;
  const volumes = new Set();

  const bar = (k) => ({ time: Math.floor(k.t / 1000), open: +k.o, high: +k.h, low: +k.l, close: +k.c });
  const volumeBar = (k) => ({ time: Math.floor(k.t / 1000), value: +k.v, color: +k.c >= +k.o ? 'rgba(63,185,80,.5)' : 'rgba(248,81,73,.5)' });
  const fmt = (v) => { const n = Number(v); return Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: 8 }) : v; };

  function showTicker(t) {
    const change = Number(t.priceChangePercent ?? t.P);
    const rows = [
      ['Last', t.lastPrice ?? t.c], ['Change', `${fmt(t.priceChange ?? t.p)} (${change.toFixed(2)}%)`], ['Open', t.openPrice ?? t.o],
      ['High', t.highPrice ?? t.h], ['Low', t.lowPrice ?? t.l], ['Volume', t.volume ?? t.v], ['Quote vol.', t.quoteVolume ?? t.q], ['Trades', t.count ?? t.n],
    ];
    $('ticker').innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd class="${k === 'Change' ? (change >= 0 ? 'up' : 'down') : ''}">${k === 'Change' || k === 'Trades' ? v : fmt(v)}</dd>`).join('');
  }

  function showBook(book) {
    const side = (levels) => { let sum = 0; return levels.slice(0, 10).map(([p, q]) => ({ p, q, cumulative: (sum += Number(q)) })); };
    const bids = side(book.bids);
    const asks = side(book.asks);
    const most = Math.max(bids.at(-1)?.cumulative ?? 0, asks.at(-1)?.cumulative ?? 0, 1e-12);
    const rows = (levels) => levels.map((l) => `<tr><td>${fmt(l.p)}</td><td>${fmt(l.q)}<span class="depth" style="width:${((l.cumulative / most) * 100).toFixed(1)}%"></span></td></tr>`).join('');
    $('book-bids').innerHTML = rows(bids);
    $('book-asks').innerHTML = rows(asks);
  }

  function addTrade(t, prepend = true) {
    const row = document.createElement('tr');
    row.className = t.m ? 'down' : 'up';
    row.innerHTML = `<td>${time(t.T)}</td><td>${fmt(t.p)}</td><td>${fmt(t.q)}</td>`;
    const body = $('trades');
    if (prepend) body.prepend(row); else body.append(row);
    while (body.children.length > 40) body.lastChild.remove();
  }

  function showCandle(k) {
    series.update(bar(k));
    volume.update(volumeBar(k));
    volumes.add(k.t);
    $('chart').dataset.candles = String(++candles);
    $('chart').dataset.volumes = String(volumes.size);
  }

  async function load() {
    const symbol = $('market').value;
    const interval = $('interval').value;
    const [klines, ticker, trades, book] = await Promise.all([
      fetch(`/api/v3/klines?symbol=${symbol}&interval=${interval}&limit=500`).then((r) => r.json()),
      fetch(`/api/v3/ticker/24hr?symbol=${symbol}`).then((r) => r.json()),
      fetch(`/api/v3/trades?symbol=${symbol}&limit=40`).then((r) => r.json()),
      fetch(`/api/v3/depth?symbol=${symbol}&limit=10`).then((r) => r.json()),
    ]);
    const rows = klines.map((k) => ({ t: k[0], o: k[1], h: k[2], l: k[3], c: k[4], v: k[5] }));
    series.setData(rows.map(bar));
    volume.setData(rows.map(volumeBar));
    volumes.clear();
    for (const k of rows) volumes.add(k.t);
    candles = klines.length;
    $('chart').dataset.candles = String(candles);
    $('chart').dataset.volumes = String(volumes.size);
    chart.timeScale().fitContent();
    showTicker(ticker);
    showBook(book);
    $('trades').innerHTML = '';
    for (const t of trades.reverse()) addTrade({ T: t.time, p: t.price, q: t.qty, m: t.isBuyerMaker }, false);
    if (socket) socket.close();
    const s = symbol.toLowerCase();
    socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/stream?streams=${s}@trade/${s}@kline_${interval}/${s}@ticker/${s}@depth10`);
    socket.onmessage = (event) => {
      const { stream, data } = JSON.parse(event.data);
      if (data.e === 'trade') addTrade(data);
      else if (data.e === 'kline') showCandle(data.k);
      else if (data.e === '24hrTicker') showTicker(data);
      else if (stream.endsWith('@depth10')) showBook(data);
    };
  }

  async function operations() {
    try {
      const h = await fetch('/health').then((r) => r.json());
      $('health').textContent = h.status;
      $('health').className = h.status === 'healthy' ? 'ok' : 'bad';
      $('rate').textContent = h.ingest ? h.ingest.eventsPerSecond.toFixed(1) : 'off';
      $('waiting').textContent = h.ingest ? String(h.ingest.waiting) : (h.bus.lag ?? '–');
      $('dead').textContent = h.ingest ? String(h.ingest.deadLettered) : '–';
      $('commit').textContent = h.ingest?.lastCommitAt ? time(Date.parse(h.ingest.lastCommitAt)) : '–';
    } catch {
      $('health').textContent = 'unreachable';
      $('health').className = 'bad';
    }
  }

  (async () => {
    const { markets } = await fetch('/v1/markets').then((r) => r.json());
    for (const m of markets.filter((m) => m.exchange === 'venue')) $('market').add(new Option(m.symbol, m.symbol));
    if (markets.some((m) => m.symbol === 'TATA_INR')) $('market').value = 'TATA_INR';
    for (const i of INTERVALS) $('interval').add(new Option(i, i));
    $('market').onchange = load;
    $('interval').onchange = load;
    await load();
    await operations();
    setInterval(operations, 2000);
  })();
})();
