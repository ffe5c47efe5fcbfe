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
  setInterval: (fn: () => void, ms: number) => ReturnType<typeof setInterval>
  clearInterval: (id: ReturnType<typeof setInterval>) => void
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

/** Merge fresh rows into the table: update by key, newest first, bounded. */
export function mergeFlows(current: FlowRecord[], fresh: FlowRecord[], max = MAX_FLOW_ROWS): { rows: FlowRecord[]; evicted: number } {
  const byKey = new Map<string, FlowRecord>()
  for (const row of current) byKey.set(row.key, row)
  for (const row of fresh) byKey.set(row.key, row)
  const rows = [...byKey.values()].sort((a, b) => b.lastSeen - a.lastSeen || b.firstSeen - a.firstSeen)
  const evicted = Math.max(0, rows.length - max)
  return { rows: evicted ? rows.slice(0, max) : rows, evicted }
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
  let timer: ReturnType<typeof setInterval> | null = null
  let generation = 0
  let inFlight = false

  const refresh = async () => {
    if (inFlight) return
    inFlight = true
    const asked = generation
    const { query, limit } = store.getState()
    store.setState({ loading: true })
    try {
      const fresh = (await deps.fetchFlows(query, limit)).map(decodeFlow)
      if (asked !== generation) return // the query changed meanwhile: drop the stale answer
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
    if (timer !== null) deps.clearInterval(timer)
    timer = null
  }

  return {
    store,
    refresh,
    follow(on) {
      store.setState({ following: on })
      stopTimer()
      if (on) {
        void refresh()
        timer = deps.setInterval(() => void refresh(), FLOW_POLL_MS)
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
    setInterval: (fn, ms) => setInterval(fn, ms),
    clearInterval: (id) => clearInterval(id),
    now: () => Date.now(),
  })
}
