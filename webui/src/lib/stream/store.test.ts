import { afterEach, describe, expect, it, vi } from 'vitest'
import { BACKOFF_CAP_MS, backoffDelay } from './backoff'
import { createFlowFeed } from './flows'
import { History, HISTORY_POINTS } from './history'
import { createStreamController, STALE_AFTER_MS, type SocketLike, type StreamDeps } from './store'

class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null
  onclose: ((ev: CloseEvent) => void) | null = null
  onmessage: ((ev: MessageEvent) => void) | null = null
  onerror: ((ev: Event) => void) | null = null
  closed: number | null = null
  sent: string[] = []
  constructor(readonly url: string) {}
  send(text: string) {
    this.sent.push(text)
  }
  close(code = 1000) {
    this.closed = code
  }
  open() {
    this.onopen?.(new Event('open'))
  }
  message(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
  }
  serverClose(code: number) {
    this.onclose?.({ code } as CloseEvent)
  }
}

function stats(ts: number, iface = 'eth0', packets = 100) {
  return {
    type: 'stats',
    ts,
    data: {
      interfaces: [{ node_id: 'n1', interface: iface, mode: 'tap', packets, bytes: packets * 100, passed: packets, dropped: 0, malformed: 0, pps: 10, bps: 8000, counters: { tcp_packets: packets }, loss: {}, rule_hits: { '1': { packets: 5, bytes: 300 } } }],
      totals: { packets, bytes: packets * 100, dropped: 0, malformed: 0, pps: 10, bps: 8000 },
      nodes: { known: 1, connected: 1 },
      flows: { tracked: 3, evicted: 0 },
    },
    top_talkers: [],
  }
}

function harness(checkAuth = async () => true) {
  vi.useFakeTimers()
  const sockets: FakeSocket[] = []
  const delays: number[] = []
  const deps: StreamDeps = {
    createSocket: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
    url: () => 'ws://test/api/v2/stream',
    setTimeout: (fn, ms) => {
      delays.push(ms)
      return setTimeout(fn, ms)
    },
    clearTimeout: (id) => clearTimeout(id),
    now: () => Date.now(),
    random: () => 1, // no jitter: the delay is the full exponential value
    checkAuth,
  }
  const flows = createFlowFeed({ fetchFlows: async () => [], setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (id) => clearTimeout(id), now: () => Date.now() })
  const controller = createStreamController(deps, new History(), flows)
  return { controller, sockets, delays, last: () => sockets[sockets.length - 1] as FakeSocket }
}

afterEach(() => vi.useRealTimers())

describe('backoff', () => {
  it('grows exponentially and is capped', () => {
    const full = (a: number) => backoffDelay(a, () => 1)
    expect(full(0)).toBe(500)
    expect(full(1)).toBe(1000)
    expect(full(4)).toBe(8000)
    for (let a = 5; a < 60; a += 1) expect(full(a)).toBe(BACKOFF_CAP_MS)
    for (let a = 0; a < 60; a += 1) expect(backoffDelay(a, () => 0)).toBeGreaterThanOrEqual(Math.min(BACKOFF_CAP_MS, 500 * 2 ** a) / 2)
  })
})

describe('live-stream store', () => {
  it('goes live on the first message and decodes stats into domain objects', () => {
    const { controller, last } = harness()
    controller.start()
    expect(controller.store.getState().status).toBe('connecting')
    last().open()
    last().message(stats(1000))
    const s = controller.store.getState()
    expect(s.status).toBe('live')
    expect(s.snapshot?.interfaces[0]?.key).toBe('n1/eth0')
    expect(s.snapshot?.interfaces[0]?.ruleHits).toEqual({ '1': { packets: 5, bytes: 300 } })
    expect(s.interfaces).toEqual(['n1/eth0'])
    expect(s.tick).toBe(1)
    controller.stop()
  })

  it('reconnects with capped exponential backoff and resets after success', () => {
    const { controller, sockets, last } = harness()
    controller.start()
    const waits: number[] = []
    for (let i = 0; i < 8; i += 1) {
      last().serverClose(1006)
      const state = controller.store.getState()
      expect(state.status).toBe('reconnecting')
      waits.push((state.retryAt ?? 0) - Date.now())
      vi.advanceTimersByTime((state.retryAt ?? 0) - Date.now())
    }
    expect(waits).toEqual([500, 1000, 2000, 4000, 8000, 15000, 15000, 15000])
    expect(sockets).toHaveLength(9)
    last().open()
    last().message({ type: 'heartbeat', seq: 1, ts: 1, dropped: 0 })
    expect(controller.store.getState()).toMatchObject({ status: 'live', attempt: 0 })
    last().serverClose(1001) // e.g. a control-plane restart
    expect(controller.store.getState().retryAt! - Date.now()).toBe(500)
    controller.stop()
  })

  it('treats a silent connection as dead after STALE_AFTER_MS', () => {
    const { controller, sockets, last } = harness()
    controller.start()
    last().open()
    last().message({ type: 'heartbeat', seq: 1, ts: 1, dropped: 0 })
    vi.advanceTimersByTime(STALE_AFTER_MS + 1)
    expect(sockets[0]?.closed).toBe(4000)
    expect(controller.store.getState().status).toBe('reconnecting')
    controller.stop()
  })

  it('stops (back to login) when a 1008 close finds the session gone', async () => {
    const { controller, sockets, last } = harness(async () => false)
    controller.start()
    last().serverClose(1008)
    await vi.runAllTimersAsync()
    expect(controller.store.getState().status).toBe('stopped')
    expect(sockets).toHaveLength(1)
  })

  it('keeps reconnecting after a 1008 when the session is still valid (grants changed)', async () => {
    const { controller, sockets, last } = harness(async () => true)
    controller.start()
    last().serverClose(1008)
    await vi.advanceTimersByTimeAsync(600)
    expect(sockets).toHaveLength(2)
    controller.stop()
  })

  it('never reconnects after stop(), and ignores a late close of the old socket', () => {
    const { controller, sockets } = harness()
    controller.start()
    const first = sockets[0] as FakeSocket
    controller.stop()
    first.serverClose(1006)
    vi.advanceTimersByTime(60_000)
    expect(sockets).toHaveLength(1)
    expect(controller.store.getState().status).toBe('stopped')
  })

  it('bounds chart history to HISTORY_POINTS however long it runs', () => {
    const { controller, last } = harness()
    controller.start()
    last().open()
    for (let i = 0; i < HISTORY_POINTS * 3; i += 1) last().message(stats(1000 + i, 'eth0', 100 + i))
    expect(controller.history.timeline.length).toBe(HISTORY_POINTS)
    const data = controller.history.columns(['n1/eth0|pps'], 0)
    expect(data[0]).toHaveLength(HISTORY_POINTS)
    expect(data[0]?.[0]).toBe(1000 + 2 * HISTORY_POINTS)
    controller.stop()
  })

  it('derives per-second rates from counters and leaves a gap on a counter reset', () => {
    const h = new History(10, 4)
    const snap = (at: number, packets: number) => ({
      at,
      interfaces: [{ key: 'n/e', nodeId: 'n', name: 'e', mode: 'tap', attachMode: 'native', packets, bytes: 0, passed: packets, redirected: 0, dropped: packets / 10, malformed: 0, pps: 0, bps: 0, loss: {}, ruleHits: {}, counters: {}, traffic: null }],
      totals: { packets: 0, bytes: 0, dropped: 0, malformed: 0, pps: 0, bps: 0 },
      loss: {},
      nodes: { known: 1, connected: 1 },
      flows: { tracked: 0, evicted: 0 },
      topTalkers: [],
    })
    h.add(snap(0, 1000))
    h.add(snap(2000, 3000))
    h.add(snap(3000, 10)) // dataplane restarted: counters went back
    const [, passed] = h.summed('passed', ['n/e'], -1)
    expect(passed).toEqual([null, 1000, null])
    expect(h.summed('dropped', ['n/e'], -1)[1]).toEqual([null, 100, null])
  })

  it('refuses chart columns beyond its bound and counts them', () => {
    const h = new History(5, 2) // two interfaces at most
    for (let i = 0; i < 5; i += 1) {
      h.add({ at: i * 1000, interfaces: [`a${i}`].map((name) => ({ key: `n/${name}`, nodeId: 'n', name, mode: 'tap', attachMode: 'x', packets: 1, bytes: 1, passed: 1, redirected: 0, dropped: 0, malformed: 0, pps: 1, bps: 1, loss: {}, ruleHits: {}, counters: {}, traffic: null })), totals: { packets: 0, bytes: 0, dropped: 0, malformed: 0, pps: 0, bps: 0 }, loss: {}, nodes: { known: 1, connected: 1 }, flows: { tracked: 0, evicted: 0 }, topTalkers: [] })
    }
    expect(h.timeline.columnCount).toBeLessThanOrEqual(2 * 10)
    expect(h.timeline.refusedColumns).toBeGreaterThan(0)
  })
})
