// The dashboard in Chromium under load: 4 live charts (4 interfaces each) fed once a second
// over a real WebSocket, and the live flows table following 1,000 new flows a second over
// the same socket's flow subscription (the page subscribes; this server answers as
// app/api/subscriptions.py does: `subscribed`, then `flows` messages of events).
// Measures: bundle size (gzip) of the first page; time to interactive on localhost;
// main-thread time per update (Chromium trace: every task between a data arrival and idle);
// long tasks over 50 ms; JS heap and DOM size over MEMORY_SECONDS.
//
//   node bench/webui/bench.mjs               # BENCH_SECONDS=60 MEMORY_SECONDS=600
//   BENCH_SECONDS=20 MEMORY_SECONDS=60 node bench/webui/bench.mjs   # quick look
//   BENCH_BREAKDOWN=1 (trace events by name, every update's time), BENCH_PROFILE=1
//   (a 10 s CPU profile's hottest functions), FLOWS_PER_SECOND=N (default 1000),
//   FLOW_MESSAGES_PER_SECOND=N (default 10: one message per dataplane batch, which a
//   dataplane sends every FLOE_TICK_SECONDS = 0.1 s; 1 = one 1,000-event message a second)
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { createHash } from 'node:crypto'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const dist = join(repo, 'webui/dist')
const { chromium } = createRequire(join(repo, 'webui/package.json'))('@playwright/test')
const BENCH_SECONDS = Number(process.env.BENCH_SECONDS ?? 60)
const MEMORY_SECONDS = Number(process.env.MEMORY_SECONDS ?? 600)
const FLOWS_PER_SECOND = Number(process.env.FLOWS_PER_SECOND ?? 1000)
const FLOW_MESSAGES_PER_SECOND = Number(process.env.FLOW_MESSAGES_PER_SECOND ?? 10)
const INTERFACES = 4

if (!existsSync(join(dist, 'index.html'))) {
  console.error('bench/webui: build the dashboard first (make webui)')
  process.exit(2)
}

// ---- bundle size: what the first page (login) downloads, and the dashboard route ----------
const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length
const index = readFileSync(join(dist, 'index.html'), 'utf8')
const firstFiles = ['index.html', ...[...index.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1])]
const firstPageGzip = firstFiles.reduce((s, f) => s + gz(f), 0)

// ---- one local server: dist/ with the SPA fallback, the API's answers, a real WebSocket ---
// (Playwright's routing would run its own script on the page's main thread per message.)
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.ico': 'image/x-icon' }
let authed = true
const sendTimes = [] // { t: CLOCK_MONOTONIC ms (the clock of Chromium's trace), kind }
const monotonicMs = () => Number(process.hrtime.bigint() / 1000n) / 1000
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  const path = decodeURIComponent(url.pathname)
  const json = (status, body) => {
    res.writeHead(status, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  if (path.startsWith('/api/')) {
    if (!authed) return json(401, { status: 'error', error: { code: 'unauthenticated', message: 'no' }, meta: { version: 2 } })
    if (path === '/api/v2/me') return json(200, me)
    if (path === '/api/v2/flows') return json(200, flowsAnswer(Number(url.searchParams.get('limit') ?? 100)))
    return json(200, { status: 'success', data: [], meta: { version: 2 } })
  }
  let file = join(dist, path)
  if (!file.startsWith(dist) || !existsSync(file) || path === '/') file = join(dist, 'index.html')
  res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' })
  res.end(readFileSync(file))
})
const sockets = new Set()
const flowSubscriptions = new Map() // socket -> subscription id
/** Client frames (masked, RFC 6455 §5.2): text payloads, in order; close/ping handled. */
function clientFrames(socket, onText) {
  let buffer = Buffer.alloc(0)
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk])
    for (;;) {
      if (buffer.length < 2) return
      const opcode = buffer[0] & 0x0f
      let length = buffer[1] & 0x7f
      let at = 2
      if (length === 126) {
        if (buffer.length < 4) return
        length = buffer.readUInt16BE(2)
        at = 4
      } else if (length === 127) {
        if (buffer.length < 10) return
        length = Number(buffer.readBigUInt64BE(2))
        at = 10
      }
      if (buffer.length < at + 4 + length) return
      const mask = buffer.subarray(at, at + 4)
      const payload = Buffer.from(buffer.subarray(at + 4, at + 4 + length))
      for (let i = 0; i < payload.length; i += 1) payload[i] ^= mask[i % 4]
      buffer = buffer.subarray(at + 4 + length)
      if (opcode === 0x1) onText(payload.toString('utf8'))
      else if (opcode === 0x8) socket.end()
    }
  })
}
function onClientMessage(socket, text) {
  const m = JSON.parse(text)
  if (m.type === 'subscribe' && m.topic === 'flows') {
    flowSubscriptions.set(socket, m.id)
    socket.write(frame(JSON.stringify({ type: 'subscribed', id: m.id, topic: 'flows' })))
  } else if (m.type === 'unsubscribe') {
    if (flowSubscriptions.get(socket) === m.id) flowSubscriptions.delete(socket)
    socket.write(frame(JSON.stringify({ type: 'unsubscribed', id: m.id })))
  }
}
function frame(text) {
  const payload = Buffer.from(text)
  const n = payload.length
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.from([0x81, 126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([0x81, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b })()])
  return Buffer.concat([head, payload])
}
server.on('upgrade', (req, socket) => {
  const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
  sockets.add(socket)
  const forget = () => {
    sockets.delete(socket)
    flowSubscriptions.delete(socket)
  }
  socket.on('close', forget)
  socket.on('error', forget)
  clientFrames(socket, (text) => onClientMessage(socket, text))
})
const statsTimer = setInterval(() => {
  if (sockets.size === 0) return
  const heartbeat = frame(JSON.stringify({ type: 'heartbeat', seq: tick, ts: Date.now() / 1000, dropped: 0 }))
  const stats = frame(statsMessage())
  sendTimes.push({ t: monotonicMs(), kind: 'stats' })
  for (const socket of sockets) {
    socket.write(heartbeat)
    socket.write(stats)
  }
}, 1000)
// One `flows` message per dataplane batch: FLOWS_PER_SECOND / FLOW_MESSAGES_PER_SECOND events,
// half a period out of phase with the stats tick (the two are independent in the product).
let flowsTimer = null
function sendFlows() {
  if (flowSubscriptions.size === 0) return
  const events = flowEvents(Math.round(FLOWS_PER_SECOND / FLOW_MESSAGES_PER_SECOND))
  const body = ',"events":' + JSON.stringify(events) + '}'
  sendTimes.push({ t: monotonicMs(), kind: 'flows' })
  for (const [socket, id] of flowSubscriptions) socket.write(frame('{"type":"flows","id":' + JSON.stringify(id) + body))
}
const flowsStart = FLOWS_PER_SECOND > 0 ? setTimeout(() => (flowsTimer = setInterval(sendFlows, 1000 / FLOW_MESSAGES_PER_SECOND)), 500 / FLOW_MESSAGES_PER_SECOND) : null
await new Promise((r) => server.listen(0, '127.0.0.1', r))
const base = `http://127.0.0.1:${server.address().port}`

// ---- synthetic data in the API's shapes ---------------------------------------------------
let flowSeq = 0
const firstCursor = Date.now() * 1000 // microseconds, as the control plane's ring starts
function flowRecord() {
  flowSeq += 1
  const now = Date.now() * 1e6
  return { node_id: `n${flowSeq % 2}`, interface: `eth${flowSeq % INTERFACES}`, src: `10.${(flowSeq >> 16) & 255}.${(flowSeq >> 8) & 255}.${flowSeq & 255}`, dst: '192.0.2.10', src_port: 1024 + (flowSeq % 60000), dst_port: 443, proto: 6, vlan: 0, packets_ab: 10, bytes_ab: 6000, packets_ba: 8, bytes_ba: 9000, packets: 18, bytes: 15000, first_seen_unix_ns: now - 1e9, last_seen_unix_ns: now, tcp_flags: 18, state: 'established', end_reason: 'none' }
}
/** GET /flows (the paused view; the page does not ask while following). */
function flowsAnswer(limit) {
  const data = Array.from({ length: Math.min(limit, FLOWS_PER_SECOND) }, flowRecord)
  return { status: 'success', data, meta: { version: 2, count: data.length, limit } }
}
/** Subscription events as app/observer/jsonview.py writes them. */
function flowEvents(n) {
  return Array.from({ length: n }, () => {
    const f = flowRecord()
    return { cursor: firstCursor + flowSeq, node_id: f.node_id, time_unix_ns: f.last_seen_unix_ns, type: 'flow', kind: 'new', ...f, ip_version: 4, delta_packets: f.packets, delta_bytes: f.bytes, verdict: 'unknown' }
  })
}
let tick = 0
function statsMessage() {
  tick += 1
  const interfaces = Array.from({ length: INTERFACES }, (_, i) => {
    const pps = 50_000 + 20_000 * Math.sin(tick / 7 + i)
    const packets = Math.round(tick * pps)
    return {
      node_id: `n${i % 2}`, interface: `eth${i}`, mode: 'tap', attach_mode: 'native', packets, bytes: packets * 700, passed: 0, redirected: packets - tick * 10, dropped: tick * 10, malformed: tick,
      pps, bps: pps * 5600, drops_per_second: 10, loss: { afxdp_ring: tick }, rule_hits: { 1: { packets: tick * 10, bytes: tick * 6000 } },
      counters: { tcp_packets: Math.round(packets * 0.6), udp_packets: Math.round(packets * 0.3), icmp_packets: Math.round(packets * 0.05), icmpv6_packets: Math.round(packets * 0.04) },
      traffic: { window_seconds: 10, ticks: 100, packets: pps * 10, bytes: pps * 7000, pps, bps: pps * 5600, top_hosts_by_bytes: Array.from({ length: 10 }, (_, h) => ({ host: `10.0.${i}.${h}`, packets: 1000 - h, bytes: 700000 - h * 1000 })), top_ports_by_bytes: Array.from({ length: 10 }, (_, p) => ({ port: 20 + p, packets: 500, bytes: 300000 })), protocols: [{ name: 'tcp', packets: 600, bytes: 420000 }, { name: 'udp', packets: 300, bytes: 210000 }], port_bands: {}, approximate: false },
      updated_unix_ns: Date.now() * 1e6,
    }
  })
  return JSON.stringify({ type: 'stats', ts: Date.now() / 1000, data: { interfaces, totals: { packets: 0, bytes: 0, dropped: 0, malformed: 0, pps: 0, bps: 0 }, loss: {}, nodes: { known: 2, connected: 2 }, flows: { tracked: 100000, evicted: 0 }, batches: { applied: tick, duplicate: 0 } }, top_talkers: [] })
}

const me = { status: 'success', data: { kind: 'session', subject: 'user:1', user_id: 1, client_id: null, email: 'bench@example.com', scopes: ['stats:read', 'flows:read', 'dataplane:read', 'rules:read'], teams: [], node_scopes: {} }, meta: { version: 2 } }

const browser = await chromium.launch({
  executablePath: process.env.FLOE_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--js-flags=--expose-gc'],
})
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
// ---- time to interactive -------------------------------------------------------------------
const page = await context.newPage()
const t0 = Date.now()
await page.goto(`${base}/dashboard`)
await page.getByTestId('chart-bps').waitFor()
const firstCharts = Date.now() - t0
await page.getByTestId('chart-bps-value').filter({ hasNotText: 'no data yet' }).waitFor({ timeout: 15_000 })
const firstData = Date.now() - t0
if (FLOWS_PER_SECOND > 0) await page.getByTestId('live-flows').waitFor({ timeout: 15_000 })
const nav = await page.evaluate(() => {
  const n = performance.getEntriesByType('navigation')[0]
  return { domInteractive: n.domInteractive, domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd }
})
const login = await (await browser.newContext()).newPage()
authed = false
const t1 = Date.now()
await login.goto(`${base}/login`)
await login.getByLabel('Email').waitFor()
const loginInteractive = Date.now() - t1
await login.close()
authed = true

// ---- main-thread time per update (trace) -------------------------------------------------
await page.waitForTimeout(5000) // warm up: charts created, the flow subscription delivering
const flowsBefore = flowSeq
await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] })
await page.waitForTimeout(BENCH_SECONDS * 1000)
const trace = JSON.parse((await browser.stopTracing()).toString())
const flowRate = (flowSeq - flowsBefore) / BENCH_SECONDS
const events = trace.traceEvents ?? trace
const mainThreads = new Set(events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`))
const tasks = events
  .filter((e) => e.ph === 'X' && (e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask') && mainThreads.has(`${e.pid}:${e.tid}`) && e.dur > 0)
  .map((e) => ({ start: e.ts / 1000, dur: e.dur / 1000 }))
  .sort((a, b) => a.start - b.start)
// Data arrivals: a stats or flows message leaving the server (same monotonic clock as the
// trace), or an XHR load on the page's main thread (there should be none: following does
// not poll).
const xhrLoads = events.filter((e) => mainThreads.has(`${e.pid}:${e.tid}`) && e.name === 'XHRLoad').map((e) => ({ t: e.ts / 1000, kind: 'xhr' }))
const arrivals = [...sendTimes, ...xhrLoads].sort((a, b) => a.t - b.t)
// An update = the tasks that follow one data arrival until the thread is idle for 20 ms.
// When two arrivals land in one busy stretch (the stats tick and a flows answer), the
// stretch is shared between them: each update is charged its half.
const bursts = []
for (const t of tasks) {
  const last = bursts[bursts.length - 1]
  if (last && t.start - last.end < 20) {
    last.busy += t.dur
    last.end = Math.max(last.end, t.start + t.dur)
  } else bursts.push({ start: t.start, end: t.start + t.dur, busy: t.dur })
}
let ai = 0
for (const b of bursts) {
  while (ai < arrivals.length && arrivals[ai].t < b.start - 10) ai += 1
  b.kinds = []
  while (ai < arrivals.length && arrivals[ai].t <= b.end + 1) {
    b.kinds.push(arrivals[ai].kind)
    ai += 1
  }
  b.arrivals = b.kinds.length
}
const updates = bursts.filter((b) => b.arrivals > 0).flatMap((b) => Array(b.arrivals).fill(b.busy / b.arrivals)).sort((a, b) => a - b)
// Per kind: a stretch holding one kind of arrival only (a shared stretch is "both").
const byKind = {}
for (const k of ['stats', 'flows', 'xhr', 'both']) {
  const times = bursts.filter((b) => b.arrivals > 0 && (k === 'both' ? new Set(b.kinds).size > 1 : b.kinds.every((x) => x === k))).flatMap((b) => Array(b.arrivals).fill(b.busy / b.arrivals)).sort((a, b) => a - b)
  if (times.length) byKind[k] = { updates: times.length, p50Ms: +times[Math.floor(0.5 * times.length)].toFixed(2), p95Ms: +times[Math.min(times.length - 1, Math.floor(0.95 * times.length))].toFixed(2), maxMs: +times[times.length - 1].toFixed(2) }
}
const idleWork = bursts.filter((b) => b.arrivals === 0).reduce((s, b) => s + b.busy, 0)
if (process.env.BENCH_BREAKDOWN) console.log('updates (ms):', updates.map((u) => u.toFixed(1)).join(' '))
const pct = (p) => updates[Math.min(updates.length - 1, Math.floor(p * updates.length))] ?? 0
const longTasks = tasks.filter((t) => t.dur > 50)
if (process.env.BENCH_BREAKDOWN) {
  const by = new Map()
  for (const e of events) if (e.ph === 'X' && mainThreads.has(`${e.pid}:${e.tid}`) && e.dur > 0 && !/RunTask/.test(e.name)) by.set(e.name, (by.get(e.name) ?? 0) + e.dur / 1000)
  console.log([...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([k, v]) => `${(v / updates.length).toFixed(2)} ms/update  ${k}`).join('\n'))
}
const busyShare = tasks.reduce((s, t) => s + t.dur, 0) / (BENCH_SECONDS * 1000)

if (process.env.BENCH_PROFILE) {
  const prof = await context.newCDPSession(page)
  await prof.send('Profiler.enable')
  await prof.send('Profiler.start')
  await page.waitForTimeout(10_000)
  const { profile } = await prof.send('Profiler.stop')
  const self = new Map()
  const dt = profile.timeDeltas ?? []
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)
    const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0) / 1000)
  })
  console.log([...self.entries()].filter(([k]) => !/\(idle\)|\(program\)/.test(k)).sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${v.toFixed(1)} ms  ${k}`).join('\n'))
}

// ---- memory over MEMORY_SECONDS ---------------------------------------------------------
const cdp = await context.newCDPSession(page)
await cdp.send('Performance.enable')
async function heapCensus() {
  await cdp.send('HeapProfiler.collectGarbage')
  const chunks = []
  const onChunk = (e) => chunks.push(e.chunk)
  cdp.on('HeapProfiler.addHeapSnapshotChunk', onChunk)
  await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
  cdp.off('HeapProfiler.addHeapSnapshotChunk', onChunk)
  const snap = JSON.parse(chunks.join(''))
  const f = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = f.length
  const census = new Map()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const key = `${types[snap.nodes[i + f.indexOf('type')]]}:${snap.strings[snap.nodes[i + f.indexOf('name')]]}`.slice(0, 80)
    const have = census.get(key) ?? [0, 0]
    census.set(key, [have[0] + 1, have[1] + snap.nodes[i + f.indexOf('self_size')]])
  }
  return census
}
const censusBefore = process.env.BENCH_HEAPDIFF ? await heapCensus() : null
const samples = []
const every = Math.max(5, Math.min(30, MEMORY_SECONDS / 10))
for (let s = 0; s <= MEMORY_SECONDS; s += every) {
  await cdp.send('HeapProfiler.collectGarbage')
  const { metrics } = await cdp.send('Performance.getMetrics')
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]))
  const rows = FLOWS_PER_SECOND > 0 ? await page.getByTestId('live-flows').locator('tr').count() : 0
  samples.push({ at: s, heapMB: +(m.JSHeapUsedSize / 2 ** 20).toFixed(2), nodes: m.Nodes, listeners: m.JSEventListeners, rows })
  if (s + every <= MEMORY_SECONDS) await page.waitForTimeout(every * 1000)
}
if (censusBefore) {
  const after = await heapCensus()
  const diff = [...after.entries()].map(([k, [n, b]]) => [k, n - (censusBefore.get(k)?.[0] ?? 0), b - (censusBefore.get(k)?.[1] ?? 0)]).sort((a, b) => b[2] - a[2]).slice(0, 20)
  console.log(diff.map(([k, n, b]) => `${(b / 1024).toFixed(1)} KiB  ${n} objects  ${k}`).join('\n'))
}
clearInterval(statsTimer)
clearTimeout(flowsStart)
if (flowsTimer) clearInterval(flowsTimer)
for (const socket of sockets) socket.destroy()
await browser.close()
server.close()

const firstMin = samples.filter((x) => x.at >= 30 && x.at <= 90)
const lastMin = samples.filter((x) => x.at >= MEMORY_SECONDS - 60)
const avg = (xs, k) => xs.reduce((s, x) => s + x[k], 0) / Math.max(1, xs.length)
const result = {
  date: new Date().toISOString(),
  chromium: browser.version?.() ?? '',
  bundle: { firstPageFiles: firstFiles, firstPageGzipKB: +(firstPageGzip / 1024).toFixed(1), goalKB: 250 },
  tti: { dashboardChartsMs: firstCharts, dashboardFirstDataMs: firstData, loginInteractiveMs: loginInteractive, navigation: nav },
  mainThread: { seconds: BENCH_SECONDS, flowsPerSecond: +flowRate.toFixed(0), flowMessagesPerSecond: FLOW_MESSAGES_PER_SECOND, byKind, xhrLoads: xhrLoads.length, updates: updates.length, p50Ms: +pct(0.5).toFixed(2), p95Ms: +pct(0.95).toFixed(2), maxMs: +(updates[updates.length - 1] ?? 0).toFixed(2), longTasksOver50ms: longTasks.length, otherWorkMs: +idleWork.toFixed(1), arrivals: arrivals.length, longestTaskMs: +Math.max(0, ...tasks.map((t) => t.dur)).toFixed(2), busyShare: +busyShare.toFixed(3), goalP95Ms: 8 },
  memory: { seconds: MEMORY_SECONDS, samples, heapMBFirstMinute: +avg(firstMin, 'heapMB').toFixed(2), heapMBLastMinute: +avg(lastMin, 'heapMB').toFixed(2), nodesFirst: samples[1]?.nodes, nodesLast: samples[samples.length - 1]?.nodes },
}
mkdirSync(join(repo, 'bench/results'), { recursive: true })
writeFileSync(join(repo, 'bench/results/webui.json'), JSON.stringify(result, null, 2))
const mt = result.mainThread
console.log(`bundle: first page ${result.bundle.firstPageGzipKB} KB gzip (goal ≤ 250)`)
console.log(`tti: login form ${loginInteractive} ms; dashboard charts ${firstCharts} ms, first live numbers ${firstData} ms (stats arrive once a second)`)
console.log(`main thread: ${mt.updates} updates in ${BENCH_SECONDS} s at ${mt.flowsPerSecond} flows/s (${FLOW_MESSAGES_PER_SECOND} flows messages/s) + 4 charts × ${INTERFACES} interfaces: p50 ${mt.p50Ms} ms, p95 ${mt.p95Ms} ms (goal ≤ 8), max ${mt.maxMs} ms; tasks > 50 ms: ${mt.longTasksOver50ms} (longest ${mt.longestTaskMs} ms); busy ${(mt.busyShare * 100).toFixed(1)} % (${mt.arrivals} arrivals, ${mt.xhrLoads} XHR loads; ${mt.otherWorkMs} ms of work not after an arrival)`)
console.log(`per kind: ${Object.entries(mt.byKind).map(([k, v]) => `${k} ${v.updates} updates p50 ${v.p50Ms} / p95 ${v.p95Ms} / max ${v.maxMs} ms`).join('; ')}`)
console.log(`memory: heap ${result.memory.heapMBFirstMinute} MB (minute 1) → ${result.memory.heapMBLastMinute} MB (last minute) over ${MEMORY_SECONDS} s; DOM nodes ${result.memory.nodesFirst} → ${result.memory.nodesLast}`)
