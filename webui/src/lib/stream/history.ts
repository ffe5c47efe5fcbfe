/**
 * Chart history derived from stats snapshots: per interface bits/s, packets/s, and the
 * per-second rates of passed (incl. redirected to a tap), dropped and malformed packets and
 * of each protocol, computed from the cumulative counters between two messages.
 */
import { Timeline } from './ring'
import type { InterfaceStats, StatsSnapshot } from './types'

/** 15 minutes at one point a second: the longest time window the dashboard offers. */
export const HISTORY_POINTS = 900
/** Interfaces charted at most (each takes 10 columns); more are counted, not stored. */
export const MAX_CHARTED_INTERFACES = 64

export const RATE_METRICS = ['bps', 'pps', 'passed', 'dropped', 'malformed'] as const
export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6', 'other'] as const
export type Metric = (typeof RATE_METRICS)[number] | `proto:${(typeof PROTOCOLS)[number]}`

export const seriesKey = (iface: string, metric: Metric) => `${iface}|${metric}`

interface Previous {
  at: number
  passed: number
  dropped: number
  malformed: number
  proto: Record<string, number>
}

function protocolCounts(i: InterfaceStats): Record<string, number> {
  const c = i.counters
  const tcp = c.tcp_packets ?? 0
  const udp = c.udp_packets ?? 0
  const icmp = c.icmp_packets ?? 0
  const icmpv6 = c.icmpv6_packets ?? 0
  return { tcp, udp, icmp, icmpv6, other: Math.max(0, i.packets - tcp - udp - icmp - icmpv6) }
}

export class History {
  readonly timeline: Timeline
  private readonly previous = new Map<string, Previous>()

  constructor(points = HISTORY_POINTS, maxInterfaces = MAX_CHARTED_INTERFACES) {
    this.timeline = new Timeline(points, maxInterfaces * (RATE_METRICS.length + PROTOCOLS.length))
  }

  add(snapshot: StatsSnapshot): void {
    const values = new Map<string, number | null>()
    const seen = new Set<string>()
    for (const i of snapshot.interfaces) {
      seen.add(i.key)
      values.set(seriesKey(i.key, 'bps'), i.bps)
      values.set(seriesKey(i.key, 'pps'), i.pps)
      const now: Previous = {
        at: snapshot.at,
        passed: i.passed + i.redirected,
        dropped: i.dropped,
        malformed: i.malformed,
        proto: protocolCounts(i),
      }
      const prev = this.previous.get(i.key)
      const dt = prev ? (now.at - prev.at) / 1000 : 0
      const rate = (cur: number, old: number | undefined) =>
        prev && dt > 0 && old !== undefined && cur >= old ? (cur - old) / dt : null
      values.set(seriesKey(i.key, 'passed'), rate(now.passed, prev?.passed))
      values.set(seriesKey(i.key, 'dropped'), rate(now.dropped, prev?.dropped))
      values.set(seriesKey(i.key, 'malformed'), rate(now.malformed, prev?.malformed))
      for (const p of PROTOCOLS) {
        values.set(seriesKey(i.key, `proto:${p}`), rate(now.proto[p] ?? 0, prev?.proto[p]))
      }
      this.previous.set(i.key, now)
    }
    for (const key of this.previous.keys()) if (!seen.has(key)) this.previous.delete(key)
    this.timeline.push(snapshot.at / 1000, values)
  }

  /** uPlot data for the sum of `metric` over `interfaces` since `sinceSeconds`. */
  summed(metric: Metric, interfaces: readonly string[], sinceSeconds: number): (number | null)[][] {
    const data = this.timeline.window(sinceSeconds, interfaces.map((i) => seriesKey(i, metric)))
    const times = data[0] ?? []
    const sum = times.map((_, row) => {
      let total: number | null = null
      for (let c = 1; c < data.length; c += 1) {
        const v = data[c]?.[row]
        if (v !== null && v !== undefined) total = (total ?? 0) + v
      }
      return total
    })
    return [times, sum]
  }

  /** uPlot data with one column per (interface, metric). */
  columns(keys: readonly string[], sinceSeconds: number): (number | null)[][] {
    return this.timeline.window(sinceSeconds, keys)
  }
}
