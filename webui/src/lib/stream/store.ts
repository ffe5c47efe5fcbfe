/**
 * The one live-stream store. It owns the WebSocket (/api/v2/stream): connects with the
 * session cookie, decodes messages into domain objects, keeps bounded chart history,
 * reconnects with capped exponential backoff, and tells everyone its state
 * (live / reconnecting) — components only read it through selectors.
 *
 * Flows ride the same socket: the flow feed (`flows.ts`) holds a flow subscription on it
 * while the socket is open; this store tells it when the socket opens and closes and hands
 * it the messages about its subscription.
 */
import { createStore, type StoreApi } from 'zustand/vanilla'
import { api, ApiError } from '../api-client'
import { useStore } from 'zustand'
import { backoffDelay } from './backoff'
import { decodeMessage } from './decode'
import { defaultFlowFeed, type FlowFeed, type FlowFeedState } from './flows'
import { History } from './history'
import type { FlowRecord, StatsSnapshot, StreamStatus } from './types'

/** A connection that has said nothing for this long is treated as dead (heartbeats are ~1 s). */
export const STALE_AFTER_MS = 10_000
/** Close codes after which reconnecting with the same credential is pointless. */
const AUTH_CLOSE = 1008

export interface SocketLike {
  onopen: ((ev: Event) => void) | null
  onclose: ((ev: CloseEvent) => void) | null
  onmessage: ((ev: MessageEvent) => void) | null
  onerror: ((ev: Event) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export interface StreamDeps {
  createSocket: (url: string) => SocketLike
  url: () => string
  setTimeout: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>
  clearTimeout: (id: ReturnType<typeof setTimeout>) => void
  now: () => number
  random: () => number
  /** Asked after a 1008 close: is the session still valid? false → stop (log in again). */
  checkAuth: () => Promise<boolean>
}

export interface StreamState {
  status: StreamStatus
  /** Consecutive failed attempts (0 while live). */
  attempt: number
  /** When the next attempt starts (epoch ms), while reconnecting. */
  retryAt: number | null
  lastMessageAt: number | null
  lastCloseCode: number | null
  /** Messages the server dropped for this client (it read too slowly). */
  serverDropped: number
  snapshot: StatsSnapshot | null
  /** Bumped on every stats message; the history itself is mutated in place. */
  tick: number
  /** Every interface seen, sorted (changes rarely: pickers subscribe to it). */
  interfaces: string[]
}

export interface StreamController {
  store: StoreApi<StreamState>
  history: History
  start(): void
  stop(): void
  /** Reconnect now (the "retry" button), resetting the backoff. */
  retryNow(): void
  /** The flow feed (a flow subscription on this socket; GET /flows when paused). */
  flows: FlowFeed
}

export function defaultStreamUrl(): string {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
  return `${scheme}://${window.location.host}/api/v2/stream`
}

const initial: StreamState = {
  status: 'idle',
  attempt: 0,
  retryAt: null,
  lastMessageAt: null,
  lastCloseCode: null,
  serverDropped: 0,
  snapshot: null,
  tick: 0,
  interfaces: [],
}

export function createStreamController(
  deps: StreamDeps,
  history = new History(),
  flows: FlowFeed = defaultFlowFeed(),
): StreamController {
  const store = createStore<StreamState>(() => ({ ...initial }))
  let socket: SocketLike | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let staleTimer: ReturnType<typeof setTimeout> | null = null
  let wanted = false

  const clearTimers = () => {
    if (retryTimer !== null) deps.clearTimeout(retryTimer)
    if (staleTimer !== null) deps.clearTimeout(staleTimer)
    retryTimer = staleTimer = null
  }

  const armStale = () => {
    if (staleTimer !== null) deps.clearTimeout(staleTimer)
    staleTimer = deps.setTimeout(() => {
      staleTimer = null
      socket?.close(4000, 'stale') // onclose schedules the reconnect
      dropSocket(4000)
    }, STALE_AFTER_MS)
  }

  const scheduleReconnect = () => {
    if (!wanted) return
    const attempt = store.getState().attempt
    const delay = backoffDelay(attempt, deps.random)
    store.setState({ status: 'reconnecting', attempt: attempt + 1, retryAt: deps.now() + delay })
    retryTimer = deps.setTimeout(() => {
      retryTimer = null
      open()
    }, delay)
  }

  /** Forget the current socket (its late events are ignored) and decide what comes next. */
  const dropSocket = (code: number) => {
    if (socket) {
      socket.onopen = socket.onclose = socket.onmessage = socket.onerror = null
      socket = null
      flows.detach()
    }
    clearTimers()
    store.setState({ lastCloseCode: code })
    if (!wanted) return
    if (code === AUTH_CLOSE) {
      store.setState({ status: 'reconnecting', retryAt: null })
      void deps.checkAuth().then((ok) => {
        if (!wanted) return
        if (ok) scheduleReconnect()
        else stop()
      })
      return
    }
    scheduleReconnect()
  }

  const onMessage = (ev: MessageEvent) => {
    if (typeof ev.data !== 'string') return
    const message = decodeMessage(ev.data)
    const now = deps.now()
    armStale()
    if (message.type === 'stats') {
      history.add(message.snapshot)
      const keys = message.snapshot.interfaces.map((i) => i.key)
      const known = store.getState().interfaces
      const merged = keys.some((k) => !known.includes(k)) ? [...new Set([...known, ...keys])].sort() : known
      store.setState((s) => ({
        status: 'live',
        attempt: 0,
        retryAt: null,
        lastMessageAt: now,
        snapshot: message.snapshot,
        tick: s.tick + 1,
        interfaces: merged,
      }))
    } else if (message.type === 'heartbeat') {
      store.setState({ status: 'live', attempt: 0, retryAt: null, lastMessageAt: now, serverDropped: message.dropped })
    } else if (message.type !== 'other') {
      flows.receive(message) // flows, subscribed, unsubscribed, error
    }
  }

  const open = () => {
    if (!wanted || socket) return
    store.setState((s) => ({ status: s.attempt > 0 ? 'reconnecting' : 'connecting' }))
    let ws: SocketLike
    try {
      ws = deps.createSocket(deps.url())
    } catch {
      scheduleReconnect()
      return
    }
    socket = ws
    ws.onopen = () => {
      armStale()
      flows.attach((text) => {
        if (socket === ws) ws.send(text)
      })
    }
    ws.onmessage = onMessage
    ws.onerror = () => undefined // a close event always follows
    ws.onclose = (ev) => {
      if (socket === ws) dropSocket(ev.code)
    }
    armStale()
  }

  function start() {
    if (wanted) return
    wanted = true
    store.setState({ attempt: 0 })
    open()
  }

  function stop() {
    wanted = false
    flows.follow(false)
    const ws = socket
    dropSocket(1000)
    ws?.close(1000, 'bye')
    store.setState({ status: 'stopped', retryAt: null })
  }

  function retryNow() {
    if (!wanted) return
    clearTimers()
    if (socket) return
    store.setState({ attempt: 0 })
    open()
  }

  return { store, history, start, stop, retryNow, flows }
}

// ---- the application's singleton --------------------------------------------------------

let controller: StreamController | null = null

export function configureStream(deps: StreamDeps): StreamController {
  controller?.stop()
  controller = createStreamController(deps)
  return controller
}

export function getStream(): StreamController {
  if (!controller) {
    controller = createStreamController({
      createSocket: (url) => new WebSocket(url),
      url: defaultStreamUrl,
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
      now: () => Date.now(),
      random: Math.random,
      checkAuth: async () => {
        try {
          await api.get('/me') // a 401 tells the auth layer (onUnauthorized): back to login
          return true
        } catch (error) {
          return !(error instanceof ApiError && error.status === 401)
        }
      },
    })
  }
  return controller
}

/** Select from the live-stream state (re-renders only when the selected value changes). */
export function useStream<T>(selector: (s: StreamState) => T): T {
  return useStore(getStream().store, selector)
}

/** Select from the flow feed's state. */
export function useFlowFeed<T>(selector: (s: FlowFeedState) => T): T {
  return useStore(getStream().flows.store, selector)
}

export type { FlowRecord }
