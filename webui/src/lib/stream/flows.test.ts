import { describe, expect, it, vi } from 'vitest'
import { createFlowFeed, FLOW_FAST_POLL_MS, FLOW_POLL_MS, MAX_FLOW_ROWS, mergeFlows } from './flows'
import { decodeFlow } from './decode'

const wire = (i: number, last = i) => ({ node_id: 'n', interface: 'e', src: `10.0.${i >> 8}.${i & 255}`, dst: '10.9.9.9', src_port: 1000 + (i % 50000), dst_port: 80, proto: 6, vlan: 0, packets: 1, bytes: 60, first_seen_unix_ns: i * 1e6, last_seen_unix_ns: last * 1e6, state: 'new', end_reason: 'none' })

describe('flow feed', () => {
  it('merges by flow key, newest first, and never holds more than the bound', () => {
    const first = Array.from({ length: 800 }, (_, i) => decodeFlow(wire(i)))
    const second = Array.from({ length: 800 }, (_, i) => decodeFlow(wire(i + 600, i + 5000)))
    const merged = mergeFlows(first, second)
    expect(merged.rows).toHaveLength(MAX_FLOW_ROWS)
    expect(merged.evicted).toBe(1400 - MAX_FLOW_ROWS)
    expect(merged.rows[0]?.lastSeen).toBeGreaterThan(merged.rows[1]?.lastSeen ?? 0)
    expect(new Set(merged.rows.map((r) => r.key)).size).toBe(MAX_FLOW_ROWS)
  })

  it('polls while following, stops when paused, and drops answers for an old query', async () => {
    vi.useFakeTimers()
    const asked: string[] = []
    let release: (rows: unknown[]) => void = () => undefined
    const feed = createFlowFeed({
      fetchFlows: (query) => {
        asked.push(JSON.stringify(query))
        return query.ip === 'slow' ? new Promise((r) => (release = r)) : Promise.resolve([wire(asked.length)])
      },
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
      now: () => Date.now(),
    })
    feed.follow(true)
    await vi.advanceTimersByTimeAsync(FLOW_POLL_MS * 3 + 10)
    expect(asked.length).toBe(4)
    expect(feed.store.getState().rows.length).toBe(4)
    feed.follow(false)
    await vi.advanceTimersByTimeAsync(FLOW_POLL_MS * 5)
    expect(asked.length).toBe(4)
    feed.setQuery({ ip: 'slow' })
    feed.setQuery({ ip: '10.0.0.1' })
    release([wire(999)])
    await vi.advanceTimersByTimeAsync(10)
    expect(feed.store.getState().rows.map((r) => r.src)).not.toContain('10.0.3.231')
    feed.dispose()
    vi.useRealTimers()
  })

  it('asks again sooner when an answer comes back full (catching up with a busy network)', async () => {
    vi.useFakeTimers()
    const at: number[] = []
    const feed = createFlowFeed({
      fetchFlows: async (_q, limit) => {
        at.push(Date.now())
        return Array.from({ length: limit }, (_, i) => wire(at.length * 10 + i))
      },
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
      now: () => Date.now(),
    })
    feed.setLimit(5)
    await vi.advanceTimersByTimeAsync(10)
    feed.follow(true)
    await vi.advanceTimersByTimeAsync(FLOW_FAST_POLL_MS * 4 + 10)
    const gaps = at.slice(2).map((t, i) => t - (at[i + 1] ?? 0))
    expect(gaps.every((g) => g === FLOW_FAST_POLL_MS)).toBe(true)
    expect(feed.store.getState().rows.length).toBe(5) // bounded by the limit asked for
    feed.dispose()
    vi.useRealTimers()
  })

  it('keeps the API error (e.g. a 422 naming the parameter) for the page', async () => {
    const { ApiError } = await import('../api-client')
    const feed = createFlowFeed({
      fetchFlows: () => Promise.reject(new ApiError(422, 'validation_error', 'bad', [{ loc: ['query', 'port'], msg: 'must be 0..65535' }])),
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
      now: () => Date.now(),
    })
    await feed.refresh()
    expect(feed.store.getState().error?.fieldErrors[0]?.msg).toBe('must be 0..65535')
  })
})
