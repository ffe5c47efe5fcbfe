/**
 * The live flow feed behind the flows table. Today it polls GET /api/v2/flows (the
 * WebSocket flow subscription belongs to the observer issue); switching to the
 * subscription changes `fetchFlows`/`start` here and nothing in the components.
 * Rows are merged by flow key (counters update in place), newest first, at most MAX_FLOW_ROWS.
 */
import { createStore, type StoreApi } from 'zustand/vanilla'
import { api, toApiError, type ApiError } from '../api-client'
import { decodeFlow } from './decode'
import type { FlowRecord } from './types'

/** Rows the table keeps at most (also the API's `limit` maximum). */
export const MAX_FLOW_ROWS = 1000
export const FLOW_POLL_MS = 2000
/** When an answer came back full (as many rows as asked), more may be waiting: ask again
 *  sooner. With limit 1,000 this follows up to 1,000 new flows a second. */
export const FLOW_FAST_POLL_MS = 1000

/** The API's filters (GET /flows): each combines with AND. */
export interface FlowQuery {
  ip?: string
  port?: string
  proto?: string
  node?: string
  interface?: string
  state?: string
  end_reason?: string
}

export const FLOW_FILTER_FIELDS: (keyof FlowQuery)[] = ['ip', 'port', 'proto', 'node', 'interface', 'state', 'end_reason']

export interface FlowFeedState {
  rows: FlowRecord[]
  query: FlowQuery
  limit: number
  following: boolean
  loading: boolean
  error: ApiError | null
  updatedAt: number | null
  /** Rows pushed out by the MAX_FLOW_ROWS bound since the feed started. */
  evicted: number
}

export interface FlowFeedDeps {
  fetchFlows: (query: FlowQuery, limit: number) => Promise<unknown[]>
  setTimeout: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>
  clearTimeout: (id: ReturnType<typeof setTimeout>) => void
  now: () => number
}

export interface FlowFeed {
  store: StoreApi<FlowFeedState>
  follow(on: boolean): void
  setQuery(query: FlowQuery): void
  setLimit(limit: number): void
  refresh(): Promise<void>
  dispose(): void
}

const newestFirst = (a: FlowRecord, b: FlowRecord) => b.lastSeen - a.lastSeen || b.firstSeen - a.firstSeen

/** Merge fresh rows into the table: update by key, newest first, bounded. Both lists are
 *  newest-first, so this is one linear merge (no sort of the whole table each poll). */
export function mergeFlows(current: FlowRecord[], fresh: FlowRecord[], max = MAX_FLOW_ROWS): { rows: FlowRecord[]; evicted: number } {
  const incoming = [...fresh].sort(newestFirst) // the API's order, made certain
  const seen = new Set<string>()
  const rows: FlowRecord[] = []
  let i = 0
  let j = 0
  let dropped = 0
  while (i < incoming.length || j < current.length) {
    const a = incoming[i]
    const b = current[j]
    let next: FlowRecord
    if (a && (!b || newestFirst(a, b) <= 0)) {
      next = a
      i += 1
    } else {
      next = b as FlowRecord
      j += 1
    }
    if (seen.has(next.key)) continue // an older copy of a flow already placed
    seen.add(next.key)
    if (rows.length < max) rows.push(next)
    else dropped += 1
  }
  return { rows, evicted: dropped }
}

export function createFlowFeed(deps: FlowFeedDeps): FlowFeed {
  const store = createStore<FlowFeedState>(() => ({
    rows: [],
    query: {},
    limit: 200,
    following: false,
    loading: false,
    error: null,
    updatedAt: null,
    evicted: 0,
  }))
  let timer: ReturnType<typeof setTimeout> | null = null
  let generation = 0
  let inFlight = false
  let lastFull = false

  const refresh = async () => {
    if (inFlight) return
    inFlight = true
    const asked = generation
    const { query, limit } = store.getState()
    store.setState({ loading: true })
    try {
      const fresh = (await deps.fetchFlows(query, limit)).map(decodeFlow)
      if (asked !== generation) return // the query changed meanwhile: drop the stale answer
      lastFull = fresh.length >= limit
      const merged = mergeFlows(store.getState().rows, fresh, Math.min(MAX_FLOW_ROWS, Math.max(limit, 1)))
      store.setState((s) => ({ rows: merged.rows, evicted: s.evicted + merged.evicted, error: null, updatedAt: deps.now() }))
    } catch (error) {
      if (asked === generation) store.setState({ error: toApiError(error) })
    } finally {
      inFlight = false
      store.setState({ loading: false })
    }
  }

  const stopTimer = () => {
    if (timer !== null) deps.clearTimeout(timer)
    timer = null
  }

  const loop = () => {
    timer = deps.setTimeout(() => {
      void refresh().finally(() => {
        if (store.getState().following && timer !== null) loop()
      })
    }, lastFull ? FLOW_FAST_POLL_MS : FLOW_POLL_MS)
  }

  return {
    store,
    refresh,
    follow(on) {
      store.setState({ following: on })
      stopTimer()
      if (on) {
        void refresh()
        loop()
      }
    },
    setQuery(query) {
      generation += 1
      inFlight = false
      store.setState({ query, rows: [], evicted: 0, error: null })
      void refresh()
    },
    setLimit(limit) {
      generation += 1
      inFlight = false
      store.setState({ limit: Math.min(MAX_FLOW_ROWS, Math.max(1, limit)) })
      void refresh()
    },
    dispose() {
      stopTimer()
      generation += 1
    },
  }
}

export async function fetchFlowsHttp(query: FlowQuery, limit: number): Promise<unknown[]> {
  const answer = await api.get<unknown[]>('/flows', { params: { ...query, limit } })
  return answer.data
}

export function defaultFlowFeed(): FlowFeed {
  return createFlowFeed({
    fetchFlows: fetchFlowsHttp,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (id) => clearTimeout(id),
    now: () => Date.now(),
  })
}
