/** The flow feed following the WebSocket flow subscription, driven through the real stream
 *  store on a fake socket: what it sends, what it makes of what the server answers. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError } from '../api-client'
import { decodeFlow } from './decode'
import { createFlowFeed, FLOW_PUBLISH_MS, MAX_FLOW_ROWS, mergeFlows, type FlowQuery } from './flows'
import { History } from './history'
import { createStreamController, type SocketLike } from './store'

class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null
  onclose: ((ev: CloseEvent) => void) | null = null
  onmessage: ((ev: MessageEvent) => void) | null = null
  onerror: ((ev: Event) => void) | null = null
  sent: string[] = []
  send(text: string) {
    this.sent.push(text)
  }
  close() {}
  open() {
    this.onopen?.(new Event('open'))
  }
  message(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
  }
  serverClose(code: number) {
    this.onclose?.({ code } as CloseEvent)
  }
  /** What the client sent, decoded. */
  get messages(): Record<string, unknown>[] {
    return this.sent.map((t) => JSON.parse(t) as Record<string, unknown>)
  }
}

/** A `GET /flows` record (the wire shape). */
const wire = (i: number, last = i) => ({ node_id: 'n', interface: 'e', src: `10.0.${i >> 8}.${i & 255}`, dst: '10.9.9.9', src_port: 1000 + (i % 50000), dst_port: 80, proto: 6, vlan: 0, packets: 1, bytes: 60, first_seen_unix_ns: i * 1e6, last_seen_unix_ns: last * 1e6, state: 'new', end_reason: 'none' })

/** A flow event as the server's subscription writes it (app/observer/jsonview.py). */
const flowEvent = (cursor: number, i: number, opts: { last?: number; packets?: number; kind?: string } = {}) => ({
  ...wire(i, opts.last ?? i),
  cursor,
  time_unix_ns: (opts.last ?? i) * 1e6,
  type: 'flow',
  kind: opts.kind ?? 'new',
  ip_version: 4,
  packets_ab: opts.packets ?? 1,
  bytes_ab: 60,
  packets_ba: 0,
  bytes_ba: 0,
  packets: opts.packets ?? 1,
  delta_packets: 1,
  delta_bytes: 60,
  tcp_flags: 2,
  verdict: 'forwarded',
})
const lostEvent = (cursor: number, source: string, count: number, detail = '') => ({ cursor, node_id: source === 'dataplane' ? 'n' : '', time_unix_ns: 1, type: 'lost', source, count, interface: '', detail })

function harness(fetchFlows: (q: FlowQuery, limit: number) => Promise<unknown[]> = async () => []) {
  vi.useFakeTimers()
  const fetch = vi.fn(fetchFlows)
  const sockets: FakeSocket[] = []
  const feed = createFlowFeed({ fetchFlows: fetch, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (id) => clearTimeout(id), now: () => Date.now() })
  const controller = createStreamController(
    {
      createSocket: () => {
        const s = new FakeSocket()
        sockets.push(s)
        return s
      },
      url: () => 'ws://test/api/v2/stream',
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
      now: () => Date.now(),
      random: () => 1,
      checkAuth: async () => true,
    },
    new History(),
    feed,
  )
  const last = () => sockets[sockets.length - 1] as FakeSocket
  const state = () => feed.store.getState()
  /** Let deferred work (the feed reconciles once per turn) and timers run. */
  const settle = (ms = 0) => vi.advanceTimersByTimeAsync(ms)
  return { controller, feed, fetch, sockets, last, state, settle }
}

/** Open the stream and follow `query`; returns the subscription's id. */
async function following(h: ReturnType<typeof harness>, query: FlowQuery = {}, limit = 200): Promise<string> {
  h.feed.setQuery(query)
  h.feed.setLimit(limit)
  h.feed.follow(true)
  h.controller.start()
  h.last().open()
  await h.settle()
  const subscribe = h.last().messages.filter((m) => m.type === 'subscribe').pop()
  expect(subscribe).toBeDefined()
  const id = subscribe?.id as string
  h.last().message({ type: 'subscribed', id, topic: 'flows' })
  return id
}

afterEach(() => vi.useRealTimers())

describe('flow feed over the WebSocket subscription', () => {
  it('subscribes with the chips as a FlowFilter and the limit as number, never polling', async () => {
    const h = harness()
    h.feed.setQuery({ ip: '10.0.0.1', port: '443', proto: 'tcp', node: 'edge-1', interface: 'eth0', state: 'new, Established', end_reason: 'tcp-fin,idle_timeout' })
    h.feed.setLimit(500)
    h.feed.follow(true)
    h.controller.start()
    await h.settle()
    expect(h.last().sent).toEqual([]) // nothing before the socket is open
    h.last().open()
    await h.settle()
    const [subscribe, ...rest] = h.last().messages
    expect(rest).toEqual([]) // one subscription, however many setters ran
    expect(subscribe).toEqual({
      type: 'subscribe',
      id: expect.any(String),
      topic: 'flows',
      filter: {
        number: 500,
        allow: [{ ip: ['10.0.0.1'], port: [443], protocol: ['tcp'], node: ['edge-1'], interface: ['eth0'], state: ['FLOW_STATE_NEW', 'FLOW_STATE_ESTABLISHED'], end_reason: ['END_REASON_TCP_FIN', 'END_REASON_IDLE_TIMEOUT'] }],
      },
    })
    await h.settle(60_000)
    expect(h.fetch).not.toHaveBeenCalled()
    h.controller.stop()
  })

  it('without chips subscribes to every flow (no allow filter)', async () => {
    const h = harness()
    await following(h, {}, 1000)
    expect(h.last().messages[0]?.filter).toEqual({ number: 1000 })
    h.controller.stop()
  })

  it('merges events into the bounded table: updates in place, newest first, the rest counted', async () => {
    const h = harness()
    const id = await following(h, {}, 500)
    expect(h.state().updatedAt).not.toBeNull() // subscribed: an empty table is "no flows", not "loading"
    h.last().message({ type: 'flows', id, events: Array.from({ length: 600 }, (_, i) => flowEvent(i + 1, i)) })
    await h.settle(FLOW_PUBLISH_MS)
    expect(h.state().rows).toHaveLength(500)
    expect(h.state().evicted).toBe(100)
    expect(h.state().rows[0]?.src).toBe(decodeFlow(wire(599)).src)
    // An update of a held flow (same key, later last_seen): in place, at the top, nothing evicted.
    h.last().message({ type: 'flows', id, events: [flowEvent(601, 550, { last: 9000, packets: 42, kind: 'update' })] })
    await h.settle(FLOW_PUBLISH_MS)
    expect(h.state().rows).toHaveLength(500)
    expect(h.state().rows[0]).toMatchObject({ src: decodeFlow(wire(550)).src, packets: 42, verdict: 'forwarded' })
    expect(h.state().rows.filter((r) => r.src === decodeFlow(wire(550)).src)).toHaveLength(1)
    expect(h.state().evicted).toBe(100)
    h.controller.stop()
  })

  it('publishes the table at most every FLOW_PUBLISH_MS however fast messages come', async () => {
    const h = harness()
    const id = await following(h, {}, 1000)
    let publishes = 0
    h.feed.store.subscribe((s, prev) => {
      if (s.rows !== prev.rows) publishes += 1
    })
    for (let i = 0; i < 50; i += 1) h.last().message({ type: 'flows', id, events: [flowEvent(i + 1, i)] }) // 50 messages at once
    await h.settle(FLOW_PUBLISH_MS * 2)
    expect(publishes).toBeLessThanOrEqual(2)
    expect(h.state().rows).toHaveLength(50) // nothing lost by coalescing
    h.controller.stop()
  })

  it('a filter change unsubscribes and subscribes afresh; the old subscription is ignored', async () => {
    const h = harness()
    const first = await following(h, { port: '53' })
    h.last().message({ type: 'flows', id: first, events: [flowEvent(1, 1)] })
    await h.settle(FLOW_PUBLISH_MS)
    h.feed.setQuery({ port: '443' })
    await h.settle()
    const [, unsubscribe, subscribe] = h.last().messages
    expect(unsubscribe).toEqual({ type: 'unsubscribe', id: first })
    expect(subscribe).toMatchObject({ type: 'subscribe', filter: { number: 200, allow: [{ port: [443] }] } })
    expect(subscribe?.id).not.toBe(first)
    expect(h.state().rows).toEqual([]) // another question: the old answer's rows go
    h.last().message({ type: 'flows', id: first, events: [flowEvent(2, 2)] }) // sent before our unsubscribe landed
    await h.settle(FLOW_PUBLISH_MS)
    expect(h.state().rows).toEqual([])
    h.controller.stop()
  })

  it('after a reconnect resumes after the last cursor: no gap, no duplicate; a RING_OVERFLOW says what was missed', async () => {
    const h = harness()
    const id = await following(h, { ip: '10.0.0.5' })
    h.last().message({ type: 'flows', id, events: [1, 2, 3].map((c) => flowEvent(100 + c, c)) })
    await h.settle(FLOW_PUBLISH_MS)
    h.last().serverClose(1006)
    expect(h.state().status).toBe('waiting')
    await h.settle(500) // the store's first backoff step
    expect(h.sockets).toHaveLength(2)
    h.last().open()
    await h.settle()
    const [resume] = h.last().messages
    expect(resume).toMatchObject({ type: 'subscribe', topic: 'flows', filter: { after: 103, allow: [{ ip: ['10.0.0.5'] }] } })
    expect((resume?.filter as Record<string, unknown>).number).toBeUndefined()
    const again = resume?.id as string
    h.last().message({ type: 'subscribed', id: again, topic: 'flows' })
    h.last().message({
      type: 'flows',
      id: again,
      lost: 7, // this subscription's queue dropped 7 (read too slowly)
      events: [lostEvent(1302, 'ring_overflow', 1200), flowEvent(103, 3, { packets: 999 }), flowEvent(1303, 4), lostEvent(1304, 'dataplane', 5, 'afxdp_ring:rx')],
    })
    await h.settle(FLOW_PUBLISH_MS)
    const rows = h.state().rows
    expect(rows.map((r) => r.src)).toEqual([4, 3, 2, 1].map((i) => decodeFlow(wire(i)).src))
    expect(rows.find((r) => r.src === decodeFlow(wire(3)).src)?.packets).toBe(1) // the replayed cursor 103 was dropped
    expect(h.state().lost).toEqual({ queue: 7, ring: 1200, dataplane: 5 })
    expect(h.state().gap).toMatchObject({ count: 1200 })
    // A second drop resumes after the newest cursor seen, whatever its kind.
    h.last().serverClose(1006)
    await h.settle(1000) // the second backoff step (no heartbeat came in between)
    expect(h.sockets).toHaveLength(3)
    h.last().open()
    await h.settle()
    expect(h.last().messages[0]).toMatchObject({ filter: { after: 1304 } })
    h.controller.stop()
  })

  it('a cursor the server does not know (another control plane) starts afresh', async () => {
    const h = harness()
    const id = await following(h)
    h.last().message({ type: 'flows', id, events: [flowEvent(50, 1)] })
    h.last().serverClose(1006)
    await h.settle(500)
    h.last().open()
    await h.settle()
    const resume = h.last().messages[0]
    expect(resume).toMatchObject({ filter: { after: 50 } })
    h.last().message({ type: 'error', id: resume?.id, error: { code: 'invalid_filter', message: 'cursor 50 was never given out', field: 'filter.after' } })
    await h.settle()
    expect(h.last().messages[1]).toMatchObject({ type: 'subscribe', filter: { number: 200 } })
    expect(h.state().fieldErrors).toEqual({})
    h.controller.stop()
  })

  it("shows the server's refusal on the chip it names, and does not ask again until the chips change", async () => {
    const h = harness()
    const id = await following(h, { port: '70000', ip: '10.0.0.1' })
    h.last().message({ type: 'error', id, error: { code: 'invalid_filter', message: 'allow[0].port: ports are 0-65535', field: 'filter.allow[0].port' } })
    await h.settle(5_000)
    expect(h.state().fieldErrors).toEqual({ port: 'allow[0].port: ports are 0-65535' })
    expect(h.state().status).toBe('refused')
    expect(h.last().messages.filter((m) => m.type === 'subscribe')).toHaveLength(1)
    // A protocol name the server does not know: the `proto` chip.
    h.feed.setQuery({ proto: 'nonsense' })
    await h.settle()
    const next = h.last().messages.pop()
    h.last().message({ type: 'error', id: next?.id, error: { code: 'invalid_filter', message: "allow[0].protocol: 'nonsense' is not a protocol", field: 'filter.allow[0].protocol' } })
    expect(h.state().fieldErrors).toEqual({ proto: "allow[0].protocol: 'nonsense' is not a protocol" })
    // An error that names no chip is the page's.
    h.feed.setQuery({})
    await h.settle()
    const third = h.last().messages.pop()
    h.last().message({ type: 'error', id: third?.id, error: { code: 'insufficient_scope', message: 'the credential lacks the flows:read scope' } })
    expect(h.state().fieldErrors).toEqual({})
    expect(h.state().error?.message).toBe('the credential lacks the flows:read scope')
    h.controller.stop()
  })

  it('refuses what it can tell is wrong before asking (a port that is no number, an unknown state)', async () => {
    const h = harness()
    h.feed.setQuery({ port: 'https', state: 'open' })
    h.feed.follow(true)
    h.controller.start()
    h.last().open()
    await h.settle()
    expect(h.last().messages).toEqual([])
    expect(Object.keys(h.state().fieldErrors).sort()).toEqual(['port', 'state'])
    h.controller.stop()
  })

  it('paused: unsubscribes and keeps the rows; a filter change then reads GET /flows', async () => {
    const h = harness(async (q) => (q.ip ? [wire(7)] : []))
    const id = await following(h)
    h.last().message({ type: 'flows', id, events: [flowEvent(1, 1)] })
    await h.settle(FLOW_PUBLISH_MS)
    h.feed.follow(false)
    await h.settle()
    expect(h.last().messages.pop()).toEqual({ type: 'unsubscribe', id })
    expect(h.state().rows).toHaveLength(1)
    expect(h.state().status).toBe('paused')
    h.last().message({ type: 'flows', id, events: [flowEvent(2, 2)] }) // in flight: ignored
    await h.settle(FLOW_PUBLISH_MS)
    expect(h.state().rows).toHaveLength(1)
    h.feed.setQuery({ ip: decodeFlow(wire(7)).src })
    await h.settle()
    expect(h.fetch).toHaveBeenCalledWith({ ip: decodeFlow(wire(7)).src }, 200)
    expect(h.state().rows.map((r) => r.src)).toEqual([decodeFlow(wire(7)).src])
    expect(h.last().messages.filter((m) => m.type === 'subscribe')).toHaveLength(1) // no subscription while paused
    h.feed.follow(true)
    await h.settle()
    expect(h.last().messages.pop()).toMatchObject({ type: 'subscribe', filter: { number: 200 } })
    h.controller.stop()
  })

  it('GET /flows refusals land on the parameter they name', async () => {
    const h = harness(() => Promise.reject(new ApiError(422, 'validation_error', 'port must be between 0 and 65535', { param: 'port' })))
    h.feed.setQuery({ port: '70000' })
    await h.settle()
    expect(h.state().fieldErrors).toEqual({ port: 'port must be between 0 and 65535' })
  })

  it('merge keeps the bound and one row per flow', () => {
    const first = Array.from({ length: 800 }, (_, i) => decodeFlow(wire(i)))
    const second = Array.from({ length: 800 }, (_, i) => decodeFlow(wire(i + 600, i + 5000)))
    const merged = mergeFlows(first, second)
    expect(merged.rows).toHaveLength(MAX_FLOW_ROWS)
    expect(merged.evicted).toBe(1400 - MAX_FLOW_ROWS)
    expect(merged.rows[0]?.lastSeen).toBeGreaterThan(merged.rows[1]?.lastSeen ?? 0)
    expect(new Set(merged.rows.map((r) => r.key)).size).toBe(MAX_FLOW_ROWS)
  })
})
