// The live dashboard: REST for the first picture, Binance market streams for what follows.
(() => {
  const $ = (id) => document.getElementById(id);
  const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'];
  const chart = LightweightCharts.createChart($('chart'), {
    layout: { background: { color: '#101418' }, textColor: '#d8dee4' },
    grid: { vertLines: { color: '#1c2128' }, horzLines: { color: '#1c2128' } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const series = chart.addSeries(LightweightCharts.CandlestickSeries, {});
  new ResizeObserver(() => chart.applyOptions({ width: $('chart').clientWidth, height: $('chart').clientHeight })).observe($('chart'));
  let socket = null;
  let candles = 0;

  const bar = (k) => ({ time: Math.floor(k.t / 1000), open: +k.o, high: +k.h, low: +k.l, close: +k.c });
  const fmt = (v) => { const n = Number(v); return Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: 8 }) : v; };

  function showTicker(t) {
    const change = Number(t.priceChangePercent ?? t.P);
    const rows = [
      ['Last', t.lastPrice ?? t.c], ['Change', `${fmt(t.priceChange ?? t.p)} (${change.toFixed(2)}%)`], ['Open', t.openPrice ?? t.o],
      ['High', t.highPrice ?? t.h], ['Low', t.lowPrice ?? t.l], ['Volume', t.volume ?? t.v], ['Quote volume', t.quoteVolume ?? t.q], ['Trades', t.count ?? t.n],
    ];
    $('ticker').innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd class="${k === 'Change' ? (change >= 0 ? 'up' : 'down') : ''}">${k === 'Change' || k === 'Trades' ? v : fmt(v)}</dd>`).join('');
  }

  function addTrade(t, prepend = true) {
    const row = document.createElement('tr');
    row.className = t.m ? 'down' : 'up';
    row.innerHTML = `<td>${new Date(t.T).toLocaleTimeString()}</td><td>${fmt(t.p)}</td><td>${fmt(t.q)}</td>`;
    const body = $('trades');
    if (prepend) body.prepend(row); else body.append(row);
    while (body.children.length > 30) body.lastChild.remove();
  }

  async function load() {
    const symbol = $('market').value;
    const interval = $('interval').value;
    const [klines, ticker, trades] = await Promise.all([
      fetch(`/api/v3/klines?symbol=${symbol}&interval=${interval}&limit=500`).then((r) => r.json()),
      fetch(`/api/v3/ticker/24hr?symbol=${symbol}`).then((r) => r.json()),
      fetch(`/api/v3/trades?symbol=${symbol}&limit=30`).then((r) => r.json()),
    ]);
    series.setData(klines.map((k) => bar({ t: k[0], o: k[1], h: k[2], l: k[3], c: k[4] })));
    candles = klines.length;
    $('chart').dataset.candles = String(candles);
    chart.timeScale().fitContent();
    showTicker(ticker);
    $('trades').innerHTML = '';
    for (const t of trades.reverse()) addTrade({ T: t.time, p: t.price, q: t.qty, m: t.isBuyerMaker }, false);
    if (socket) socket.close();
    const s = symbol.toLowerCase();
    socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/stream?streams=${s}@trade/${s}@kline_${interval}/${s}@ticker`);
    socket.onmessage = (event) => {
      const { data } = JSON.parse(event.data);
      if (data.e === 'trade') addTrade(data);
      else if (data.e === 'kline') {
        series.update(bar(data.k));
        $('chart').dataset.candles = String(++candles);
      } else if (data.e === '24hrTicker') showTicker(data);
    };
  }

  async function health() {
    try {
      const h = await fetch('/health').then((r) => r.json());
      $('health').textContent = h.status;
      $('health').className = h.status === 'healthy' ? 'ok' : 'bad';
      $('rate').textContent = h.ingest ? h.ingest.eventsPerSecond.toFixed(1) : 'off';
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
    await health();
    setInterval(health, 2000);
  })();
})();
