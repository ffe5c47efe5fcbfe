/** Merging the per-interface panels (protocol mix, top hosts/ports, loss) over a selection. */
import type { HostCount, InterfaceStats, PortCount, ProtocolCount } from '@/lib/stream/types'

function mergeBy<T extends { packets: number; bytes: number }>(lists: T[][], key: (t: T) => string | number, limit: number): T[] {
  const out = new Map<string | number, T>()
  for (const list of lists) {
    for (const item of list) {
      const k = key(item)
      const have = out.get(k)
      out.set(k, have ? { ...have, packets: have.packets + item.packets, bytes: have.bytes + item.bytes } : { ...item })
    }
  }
  return [...out.values()].sort((a, b) => b.bytes - a.bytes).slice(0, limit)
}

export interface Aggregate {
  protocols: ProtocolCount[]
  topHosts: HostCount[]
  topPorts: PortCount[]
  loss: { source: string; count: number }[]
  approximate: boolean
  windowSeconds: number
  bps: number
  pps: number
  dropped: number
  malformed: number
  ruleHits: Record<string, number>
}

export function aggregate(interfaces: InterfaceStats[]): Aggregate {
  const traffic = interfaces.map((i) => i.traffic).filter((t) => t !== null)
  const loss = new Map<string, number>()
  const ruleHits: Record<string, number> = {}
  for (const i of interfaces) {
    for (const [source, count] of Object.entries(i.loss)) loss.set(source, (loss.get(source) ?? 0) + count)
    for (const [rule, hits] of Object.entries(i.ruleHits)) ruleHits[rule] = (ruleHits[rule] ?? 0) + hits.packets
  }
  return {
    protocols: mergeBy(traffic.map((t) => t.protocols), (p) => p.name, 16),
    topHosts: mergeBy(traffic.map((t) => t.topHostsByBytes), (h) => h.host, 10),
    topPorts: mergeBy(traffic.map((t) => t.topPortsByBytes), (p) => p.port, 10),
    loss: [...loss.entries()].map(([source, count]) => ({ source, count })).sort((a, b) => b.count - a.count),
    approximate: traffic.some((t) => t.approximate),
    windowSeconds: Math.max(0, ...traffic.map((t) => t.windowSeconds)),
    bps: interfaces.reduce((s, i) => s + i.bps, 0),
    pps: interfaces.reduce((s, i) => s + i.pps, 0),
    dropped: interfaces.reduce((s, i) => s + i.dropped, 0),
    malformed: interfaces.reduce((s, i) => s + i.malformed, 0),
    ruleHits,
  }
}
