/** Wire JSON (the envelope's `data`, WebSocket messages) → domain objects, defensively. */
import type { FlowEvent, FlowRecord, HostCount, RuleHits, InterfaceStats, PortCount, ProtocolCount, StatsSnapshot, Traffic } from './types'

type Json = Record<string, unknown>

const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback)
const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback)
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {})
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])

function numberMap(v: unknown): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, x] of Object.entries(obj(v))) if (typeof x === 'number') out[k] = x
  return out
}

/** `rule_hits`: rule id → {packets, bytes} (a bare number is read as packets). */
function hitMap(v: unknown): Record<string, RuleHits> {
  const out: Record<string, RuleHits> = {}
  for (const [k, x] of Object.entries(obj(v))) {
    if (typeof x === 'number') out[k] = { packets: x, bytes: 0 }
    else if (x && typeof x === 'object') out[k] = { packets: num(obj(x).packets), bytes: num(obj(x).bytes) }
  }
  return out
}

const hosts = (v: unknown): HostCount[] =>
  arr(v).map((h) => ({ host: str(obj(h).host), packets: num(obj(h).packets), bytes: num(obj(h).bytes) }))
const ports = (v: unknown): PortCount[] =>
  arr(v).map((p) => ({ port: num(obj(p).port), packets: num(obj(p).packets), bytes: num(obj(p).bytes) }))
const protocols = (v: unknown): ProtocolCount[] =>
  arr(v).map((p) => ({ name: str(obj(p).name), packets: num(obj(p).packets), bytes: num(obj(p).bytes) }))

function traffic(v: unknown): Traffic | null {
  if (!v || typeof v !== 'object') return null
  const t = obj(v)
  return {
    windowSeconds: num(t.window_seconds),
    packets: num(t.packets),
    bytes: num(t.bytes),
    pps: typeof t.pps === 'number' ? t.pps : null,
    bps: typeof t.bps === 'number' ? t.bps : null,
    topHostsByBytes: hosts(t.top_hosts_by_bytes),
    topPortsByBytes: ports(t.top_ports_by_bytes),
    protocols: protocols(t.protocols),
    approximate: t.approximate === true,
  }
}

export function decodeInterface(v: unknown): InterfaceStats {
  const i = obj(v)
  const nodeId = str(i.node_id, '?')
  const name = str(i.interface, '?')
  return {
    key: `${nodeId}/${name}`,
    nodeId,
    name,
    mode: str(i.mode, 'unknown'),
    attachMode: str(i.attach_mode, 'unknown'),
    packets: num(i.packets),
    bytes: num(i.bytes),
    passed: num(i.passed),
    redirected: num(i.redirected),
    dropped: num(i.dropped),
    malformed: num(i.malformed),
    pps: num(i.pps),
    bps: num(i.bps),
    loss: numberMap(i.loss),
    ruleHits: hitMap(i.rule_hits),
    counters: numberMap(i.counters),
    traffic: traffic(i.traffic),
  }
}

/** The `/stats/summary` data (plus `top_talkers`), at server time `atMs`. */
export function decodeSummary(data: unknown, atMs: number, topTalkers?: unknown): StatsSnapshot {
  const d = obj(data)
  const totals = obj(d.totals)
  return {
    at: atMs,
    interfaces: arr(d.interfaces).map(decodeInterface),
    totals: {
      packets: num(totals.packets),
      bytes: num(totals.bytes),
      dropped: num(totals.dropped),
      malformed: num(totals.malformed),
      pps: num(totals.pps),
      bps: num(totals.bps),
    },
    loss: numberMap(d.loss),
    nodes: { known: num(obj(d.nodes).known), connected: num(obj(d.nodes).connected) },
    flows: { tracked: num(obj(d.flows).tracked), evicted: num(obj(d.flows).evicted) },
    topTalkers: hosts(topTalkers ?? d.top_talkers),
  }
}

/** A message about one of this socket's subscriptions (the flow feed's business). */
export type SubscriptionMessage =
  | { type: 'flows'; id: string; events: FlowEvent[]; lost: number }
  | { type: 'subscribed' | 'unsubscribed'; id: string }
  | { type: 'error'; id: string | null; code: string; message: string; field: string | null }

export type StreamMessage =
  | { type: 'stats'; snapshot: StatsSnapshot }
  | { type: 'heartbeat'; seq: number; dropped: number; at: number }
  | SubscriptionMessage
  | { type: 'other' }

/** One WebSocket text frame → a typed message (unknown types are ignored, not errors). */
export function decodeMessage(text: string): StreamMessage {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return { type: 'other' }
  }
  const m = obj(raw)
  const at = num(m.ts, Date.now() / 1000) * 1000
  if (m.type === 'stats') return { type: 'stats', snapshot: decodeSummary(m.data, at, m.top_talkers) }
  if (m.type === 'heartbeat') return { type: 'heartbeat', seq: num(m.seq), dropped: num(m.dropped), at }
  if (typeof m.id === 'string') {
    if (m.type === 'flows') return { type: 'flows', id: m.id, events: arr(m.events).map(decodeFlowEvent), lost: num(m.lost) }
    if (m.type === 'subscribed' || m.type === 'unsubscribed') return { type: m.type, id: m.id }
  }
  if (m.type === 'error') {
    const e = obj(m.error)
    return { type: 'error', id: typeof m.id === 'string' ? m.id : null, code: str(e.code, 'error'), message: str(e.message, 'refused'), field: typeof e.field === 'string' ? e.field : null }
  }
  return { type: 'other' }
}

/** One subscription event: a flow (the keys of a GET /flows record plus cursor, kind,
 *  deltas, verdict), a loss report, or a node's (dis)connection. */
export function decodeFlowEvent(v: unknown): FlowEvent {
  const e = obj(v)
  const cursor = num(e.cursor)
  if (e.type === 'lost') {
    return { type: 'lost', cursor, source: str(e.source, 'unspecified'), count: num(e.count), nodeId: str(e.node_id), interface: str(e.interface), detail: str(e.detail) }
  }
  if (e.type === 'node') return { type: 'node', cursor, nodeId: str(e.node_id), state: str(e.state, 'unspecified') }
  return { type: 'flow', cursor, kind: str(e.kind, 'unspecified'), flow: decodeFlow(e) }
}

export function flowKey(f: Json): string {
  return [f.node_id, f.interface, f.src, f.src_port, f.dst, f.dst_port, f.proto, f.vlan, f.first_seen_unix_ns].join('|')
}

export function decodeFlow(v: unknown): FlowRecord {
  const f = obj(v)
  return {
    key: flowKey(f),
    nodeId: str(f.node_id),
    interface: str(f.interface),
    src: str(f.src),
    dst: str(f.dst),
    srcPort: num(f.src_port),
    dstPort: num(f.dst_port),
    proto: num(f.proto),
    vlan: num(f.vlan),
    packetsAB: num(f.packets_ab),
    bytesAB: num(f.bytes_ab),
    packetsBA: num(f.packets_ba),
    bytesBA: num(f.bytes_ba),
    packets: num(f.packets),
    bytes: num(f.bytes),
    firstSeen: num(f.first_seen_unix_ns) / 1e6,
    lastSeen: num(f.last_seen_unix_ns) / 1e6,
    tcpFlags: num(f.tcp_flags),
    state: str(f.state),
    endReason: str(f.end_reason),
    verdict: typeof f.verdict === 'string' ? f.verdict : undefined,
  }
}
