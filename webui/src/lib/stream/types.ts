/** Domain shapes of the live stream: components use these, never the wire JSON. */

export interface HostCount {
  host: string
  packets: number
  bytes: number
}
export interface PortCount {
  port: number
  packets: number
  bytes: number
}
export interface ProtocolCount {
  name: string
  packets: number
  bytes: number
}

export interface Traffic {
  windowSeconds: number
  packets: number
  bytes: number
  pps: number | null
  bps: number | null
  topHostsByBytes: HostCount[]
  topPortsByBytes: PortCount[]
  protocols: ProtocolCount[]
  approximate: boolean
}

export interface RuleHits {
  packets: number
  bytes: number
}

export interface InterfaceStats {
  /** `node/interface`, unique across the fleet. */
  key: string
  nodeId: string
  name: string
  mode: string
  attachMode: string
  packets: number
  bytes: number
  passed: number
  redirected: number
  dropped: number
  malformed: number
  pps: number
  bps: number
  loss: Record<string, number>
  ruleHits: Record<string, RuleHits>
  counters: Record<string, number>
  traffic: Traffic | null
}

export interface StatsSnapshot {
  /** Server time of the message, epoch milliseconds. */
  at: number
  interfaces: InterfaceStats[]
  totals: { packets: number; bytes: number; dropped: number; malformed: number; pps: number; bps: number }
  loss: Record<string, number>
  nodes: { known: number; connected: number }
  flows: { tracked: number; evicted: number }
  topTalkers: HostCount[]
}

export interface FlowRecord {
  key: string
  nodeId: string
  interface: string
  src: string
  dst: string
  srcPort: number
  dstPort: number
  proto: number
  vlan: number
  packetsAB: number
  bytesAB: number
  packetsBA: number
  bytesBA: number
  packets: number
  bytes: number
  firstSeen: number
  lastSeen: number
  tcpFlags: number
  state: string
  endReason: string
  /** forwarded | dropped | unknown: carried by subscription events, not by GET /flows. */
  verdict?: string
}

/** One event of the WebSocket flow subscription (the observer's `Event`). `cursor` orders
 *  them and resumes a subscription (0: a report about this stream, not an event of the ring). */
export type FlowEvent =
  | { type: 'flow'; cursor: number; kind: string; flow: FlowRecord }
  | { type: 'lost'; cursor: number; source: string; count: number; nodeId: string; interface: string; detail: string }
  | { type: 'node'; cursor: number; nodeId: string; state: string }

export type StreamStatus = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'stopped'
