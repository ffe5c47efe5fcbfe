/**
 * The flow feed behind the flows table and the dashboard's live flows.
 *
 * Following, it holds one WebSocket flow subscription on the stream store's socket
 * (docs/observer.md, "WebSocket subscriptions"): the chips as one `allow` filter, the table's
 * size as `number` (so the table starts with the newest events the server's ring holds), then
 * every matching event as it comes. It remembers the newest cursor it was given; when the
 * socket comes back it subscribes again with `after: <cursor>`, so nothing is skipped and
 * nothing counted twice, and the server's RING_OVERFLOW report says what could not be
 * delivered. Paused (or without the stream), the table is read from GET /flows instead.
 *
 * Rows are merged by flow key (counters update in place), newest first, at most
 * MAX_FLOW_ROWS; what the bound pushes out is counted, and so is every loss the server reports.
 * The table is published at most every FLOW_PUBLISH_MS, however fast messages arrive.
 */
import { createStore, type StoreApi } from 'zustand/vanilla'
import { api, ApiError, toApiError } from '../api-client'
import type { SubscriptionMessage } from './decode'
import { decodeFlow } from './decode'
import { chipOfApiError, chipOfFilterField, toFlowFilter, toHttpQuery, type FlowFieldErrors, type FlowQuery } from './flow-filter'
import type { FlowEvent, FlowRecord } from './types'

export { FLOW_FILTER_FIELDS, type FlowFieldErrors, type FlowQuery } from './flow-filter'

/** Rows the table keeps at most (also GET /flows's `limit` maximum). */
export const MAX_FLOW_ROWS = 1000
/** The table is handed to React at most this often (a subscription sends one message per
 *  dataplane batch — ten a second per node — and each would otherwise be a render). */
export const FLOW_PUBLISH_MS = 250

/** Where following stands. */
export type FlowFollowStatus =
  | 'paused' // not following: the table is GET /flows's answer
  | 'waiting' // following, the stream's socket is not open (connecting or reconnecting)
  | 'subscribing' // asked, not yet answered
  | 'live' // the server said "subscribed": events arrive as they happen
  | 'refused' // the server (or the chips' own check) refused this filter: see the errors

/** Events the server reports lost for this subscription, by where they were lost. */
export interface FlowLoss {
  /** Dropped from this subscription's queue: the browser read too slowly (`lost`). */
  queue: number
  /** Overwritten in the server's ring before a resumed subscription read them (RING_OVERFLOW). */
  ring: number
  /** Lost by the dataplanes themselves (AF_XDP ring, flow-table eviction, uplink buffer). */
  dataplane: number
}

export interface FlowGap {
  count: number
  detail: string
  at: number
}

export interface FlowFeedState {
  rows: FlowRecord[]
  query: FlowQuery
  limit: number
  following: boolean
  status: FlowFollowStatus
  loading: boolean
  /** A refusal that names no chip (GET /flows, or the subscription). */
  error: ApiError | null
  /** Refusals that name a chip, from the chips' own check, the subscription or GET /flows. */
  fieldErrors: FlowFieldErrors
  updatedAt: number | null
  /** Rows pushed out by the bound since this query started. */
  evicted: number
  lost: FlowLoss
  /** The last RING_OVERFLOW report (a resume after a reconnect that came too late). */
  gap: FlowGap | null
}

export interface FlowFeedDeps {
  /** GET /flows: the table when not following. */
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
  /** Ask again now: subscribe afresh when following, else read GET /flows. */
  refresh(): Promise<void>
  /** The stream store: its socket is open, and this sends one text frame on it. */
  attach(send: (text: string) => void): void
  /** The stream store: the socket is gone (and with it the server's subscriptions). */
  detach(): void
  /** The stream store: a message about a subscription. */
  receive(message: SubscriptionMessage): void
  dispose(): void
}

const newestFirst = (a: FlowRecord, b: FlowRecord) => b.lastSeen - a.lastSeen || b.firstSeen - a.firstSeen

/** Merge fresh rows into the table: update by key, newest first, bounded. Both lists are
 *  newest-first, so this is one linear merge (no sort of the whole table each message). */
export function mergeFlows(current: FlowRecord[], fresh: FlowRecord[], max = MAX_FLOW_ROWS): { rows: FlowRecord[]; evicted: number } {
  const incoming = [...fresh].sort(newestFirst)
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

/** The newest event of each flow in `events` (cursor order), at most `max` flows; the
 *  older flows beyond them are counted, not kept (a resume can bring a whole ring). */
function latestPerFlow(flows: FlowRecord[], max: number): { rows: FlowRecord[]; beyond: number } {
  if (flows.length <= 1) return { rows: flows, beyond: 0 }
  const seen = new Set<string>()
  const rows: FlowRecord[] = []
  let beyond = 0
  for (let i = flows.length - 1; i >= 0; i -= 1) {
    const f = flows[i] as FlowRecord
    if (seen.has(f.key)) continue
    seen.add(f.key)
    if (rows.length < max) rows.push(f)
    else beyond += 1
  }
  return { rows, beyond }
}

const noLoss = (): FlowLoss => ({ queue: 0, ring: 0, dataplane: 0 })
const sameQuery = (a: FlowQuery, b: FlowQuery) => JSON.stringify(a) === JSON.stringify(b)

export function createFlowFeed(deps: FlowFeedDeps): FlowFeed {
  const store = createStore<FlowFeedState>(() => ({
    rows: [],
    query: {},
    limit: 200,
    following: false,
    status: 'paused',
    loading: false,
    error: null,
    fieldErrors: {},
    updatedAt: null,
    evicted: 0,
    lost: noLoss(),
    gap: null,
  }))

  let send: ((text: string) => void) | null = null
  /** The subscription this feed holds on the open socket, and what it asked for. */
  let subscription: { id: string; key: string } | null = null
  let serial = 0
  /** The newest cursor received, and the question (query + limit) it belongs to. */
  let cursor: number | null = null
  let cursorKey = ''
  /** A question the server (or the chips' check) refused: not asked again until it changes. */
  let refusedKey: string | null = null
  let syncQueued = false
  /** The table holds an answer to the current question (subscribed, or GET /flows read). */
  let answered = false
  /** A page changed what it wants since the last sync (the socket opening is no reason to
   *  read GET /flows). */
  let asked = false
  let generation = 0 // GET /flows answers for an older question are dropped
  let inFlight = false
  // The table between publications (merged per message, handed to React at most every
  // FLOW_PUBLISH_MS) and what it has pushed out.
  let table: FlowRecord[] = []
  let evicted = 0
  let lost = noLoss()
  let gap: FlowGap | null = null
  let publishTimer: ReturnType<typeof setTimeout> | null = null
  let lastPublish = -Infinity

  const keyOf = () => {
    const { query, limit } = store.getState()
    return JSON.stringify([query, limit])
  }

  const publish = () => {
    if (publishTimer !== null) deps.clearTimeout(publishTimer)
    publishTimer = null
    lastPublish = deps.now()
    store.setState({ rows: table, evicted, lost, gap, updatedAt: lastPublish })
  }

  /** Publish with the message that brought the change when the last publication is
   *  FLOW_PUBLISH_MS old; else let a later message do it, and a timer when none comes. The
   *  render then costs the message's own task, not a stray timer's (bench/webui charges it). */
  const publishSoon = () => {
    if (deps.now() - lastPublish >= FLOW_PUBLISH_MS) {
      publish()
      return
    }
    if (publishTimer !== null) deps.clearTimeout(publishTimer)
    publishTimer = deps.setTimeout(publish, FLOW_PUBLISH_MS)
  }

  /** A new question: the old answer's rows, counts and cursor go. */
  const reset = () => {
    generation += 1
    inFlight = false
    table = []
    evicted = 0
    lost = noLoss()
    gap = null
    cursor = null
    refusedKey = null
    answered = false
    if (publishTimer !== null) deps.clearTimeout(publishTimer)
    publishTimer = null
    store.setState({ rows: [], evicted: 0, lost: noLoss(), gap: null, error: null, fieldErrors: {}, updatedAt: null })
  }

  const frame = (message: Record<string, unknown>) => send?.(JSON.stringify(message))

  const subscribe = () => {
    const { query, limit } = store.getState()
    const key = keyOf()
    const { filter, errors } = toFlowFilter(query)
    if (Object.keys(errors).length) {
      refusedKey = key
      store.setState({ status: 'refused', fieldErrors: errors, error: null })
      return
    }
    // After a reconnect: everything after the newest cursor held (the server reports what its
    // ring no longer has). Otherwise: the newest `limit` events, then live. Cursors are
    // microseconds since 1970 (~1.8e15), exact in a JavaScript number until the year 2255.
    const request: Record<string, unknown> = {}
    if (cursor !== null && cursorKey === key && Number.isSafeInteger(cursor)) request.after = cursor
    else {
      cursor = null
      cursorKey = key
      request.number = limit
    }
    if (filter) request.allow = [filter]
    serial += 1
    subscription = { id: `flows-${serial}`, key }
    frame({ type: 'subscribe', id: subscription.id, topic: 'flows', filter: request })
    store.setState({ status: 'subscribing' })
  }

  /** Bring the subscription (or GET /flows) in line with what is wanted, once per turn:
   *  setQuery + setLimit + follow in one render make one subscription, not three. */
  const sync = () => {
    syncQueued = false
    const { following } = store.getState()
    const key = keyOf()
    if (subscription && (!following || subscription.key !== key || !send)) {
      frame({ type: 'unsubscribe', id: subscription.id })
      subscription = null
    }
    if (!following) {
      // Paused, the rows held stay as they are; following again asks for the newest `limit`
      // events, not for everything since the pause (which could be the server's whole ring).
      cursor = null
      store.setState({ status: 'paused' })
      if (asked && !answered) void refreshHttp()
      asked = false
      return
    }
    asked = false
    if (!send) store.setState({ status: 'waiting' })
    else if (refusedKey === key) store.setState({ status: 'refused' })
    else if (!subscription) subscribe()
  }

  const schedule = () => {
    if (syncQueued) return
    syncQueued = true
    queueMicrotask(sync)
  }

  const refreshHttp = async () => {
    if (inFlight) return
    inFlight = true
    const question = generation
    const { query, limit } = store.getState()
    store.setState({ loading: true })
    try {
      const fresh = (await deps.fetchFlows(toHttpQuery(query), limit)).map(decodeFlow)
      if (question !== generation || store.getState().following) return // a newer question, or live again
      const merged = mergeFlows(table, fresh, Math.min(MAX_FLOW_ROWS, Math.max(limit, 1)))
      table = merged.rows
      evicted += merged.evicted
      answered = true
      store.setState({ error: null, fieldErrors: {} })
      publish()
    } catch (error) {
      if (question !== generation) return
      const chip = chipOfApiError(error)
      const e = toApiError(error)
      if (chip) store.setState({ fieldErrors: { [chip]: e.message }, error: null })
      else store.setState({ error: e })
    } finally {
      if (question === generation) inFlight = false
      store.setState({ loading: false })
    }
  }

  const apply = (events: FlowEvent[], queueLost: number) => {
    const flows: FlowRecord[] = []
    let newest = cursor
    for (const event of events) {
      const report = event.type === 'lost' && event.source === 'ring_overflow'
      if (event.cursor > 0 && cursor !== null && event.cursor <= cursor && !report) continue // had it
      if (event.cursor > 0) newest = Math.max(newest ?? 0, event.cursor)
      if (event.type === 'flow') flows.push(event.flow)
      else if (event.type === 'lost') {
        if (event.source === 'ring_overflow') {
          lost = { ...lost, ring: lost.ring + event.count }
          gap = { count: event.count, detail: event.detail, at: deps.now() }
        } else if (event.source === 'consumer_queue') lost = { ...lost, queue: lost.queue + event.count }
        else lost = { ...lost, dataplane: lost.dataplane + event.count }
      }
    }
    cursor = newest
    if (queueLost > 0) lost = { ...lost, queue: lost.queue + queueLost }
    const max = Math.min(MAX_FLOW_ROWS, Math.max(store.getState().limit, 1))
    if (flows.length) {
      const latest = latestPerFlow(flows, max)
      const merged = mergeFlows(table, latest.rows, max)
      table = merged.rows
      evicted += merged.evicted + latest.beyond
    }
    publishSoon()
  }

  const receive = (message: SubscriptionMessage) => {
    if (!subscription || message.id !== subscription.id) return // an earlier subscription's
    if (message.type === 'flows') apply(message.events, message.lost)
    else if (message.type === 'subscribed') {
      answered = true
      store.setState({ status: 'live', error: null, fieldErrors: {} })
      publish() // an empty answer is an answer: "no flows match", not "loading"
    } else if (message.type === 'error') {
      subscription = null
      if (message.field === 'filter.after') {
        // A cursor this control plane never gave out (another server behind the same
        // address): start afresh rather than not at all.
        cursor = null
        schedule()
        return
      }
      refusedKey = keyOf()
      const chip = chipOfFilterField(message.field)
      if (chip) store.setState({ status: 'refused', fieldErrors: { [chip]: message.message }, error: null })
      else store.setState({ status: 'refused', fieldErrors: {}, error: new ApiError(0, message.code, message.message, message.field ? { field: message.field } : null) })
    }
  }

  return {
    store,
    follow(on) {
      store.setState({ following: on })
      asked = true
      schedule()
    },
    setQuery(query) {
      if (sameQuery(query, store.getState().query)) return
      store.setState({ query })
      reset()
      asked = true
      schedule()
    },
    setLimit(limit) {
      const bounded = Math.min(MAX_FLOW_ROWS, Math.max(1, limit))
      if (bounded === store.getState().limit) return
      store.setState({ limit: bounded })
      if (table.length > bounded) {
        evicted += table.length - bounded
        table = table.slice(0, bounded)
        publish()
      }
      refusedKey = null
      answered = false
      asked = true
      schedule()
    },
    async refresh() {
      refusedKey = null
      if (store.getState().following) {
        if (subscription) frame({ type: 'unsubscribe', id: subscription.id })
        subscription = null
        schedule()
        return
      }
      inFlight = false
      generation += 1
      await refreshHttp()
    },
    attach(sender) {
      send = sender
      subscription = null
      schedule()
    },
    detach() {
      send = null
      subscription = null // the server ended it with the socket
      if (store.getState().following) store.setState({ status: 'waiting' })
      schedule()
    },
    receive,
    dispose() {
      if (subscription) frame({ type: 'unsubscribe', id: subscription.id })
      subscription = null
      send = null
      generation += 1
      if (publishTimer !== null) deps.clearTimeout(publishTimer)
      publishTimer = null
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
