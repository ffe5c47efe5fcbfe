/** Units and times as people read them: K/M/G, bits vs bytes, relative and absolute. */

const SI = ['', 'K', 'M', 'G', 'T', 'P']
const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

function scaled(value: number, base: number, units: string[]): [number, string] {
  let v = Math.abs(value)
  let i = 0
  while (v >= base && i < units.length - 1) {
    v /= base
    i += 1
  }
  return [Math.sign(value) * v, units[i] ?? '']
}

function digits(v: number): string {
  const a = Math.abs(v)
  if (a === 0) return '0'
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

/** 1234567 → "1.23 M" (SI, for counts and rates). */
export function formatSI(value: number | null | undefined, unit = ''): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  const [v, prefix] = scaled(value, 1000, SI)
  return `${digits(v)} ${prefix}${unit}`.trim()
}

/** Bits per second: network rates are bits (×1000). */
export const formatBps = (bitsPerSecond: number | null | undefined) => formatSI(bitsPerSecond, 'b/s')
/** Packets per second. */
export const formatPps = (pps: number | null | undefined) => formatSI(pps, 'pkt/s')

/** Byte volumes: binary units (×1024). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—'
  const [v, unit] = scaled(bytes, 1024, IEC)
  return unit === 'B' ? `${Math.round(v)} B` : `${digits(v)} ${unit}`
}

// One formatter for every count: `toLocaleString` builds a new one per call (the dashboard's
// hottest function in a profile).
const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

/** Plain counts with thousands separators. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—'
  return COUNT.format(Math.round(n))
}

export function formatPercent(part: number, whole: number): string {
  if (!whole) return '0%'
  const p = (part / whole) * 100
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`
}

type TimeInput = Date | number | string | null | undefined

/** Accepts Date, epoch seconds, epoch ms, epoch ns or an ISO string (UTC when unzoned). */
export function toDate(input: TimeInput): Date | null {
  if (input === null || input === undefined || input === '') return null
  if (input instanceof Date) return input
  if (typeof input === 'number') {
    if (input > 1e17) return new Date(input / 1e6) // ns
    if (input > 1e11) return new Date(input) // ms
    return new Date(input * 1000) // s
  }
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(input) ? input : `${input}Z`
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? null : d
}

/** "2026-12-07 10:34:55 UTC" (absolute, unambiguous). */
export function formatAbsolute(input: TimeInput): string {
  const d = toDate(input)
  if (!d) return '—'
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

/** "5 s ago", "3 min ago", "2 h ago", "4 d ago" (and "in 5 min" for the future). */
export function formatRelative(input: TimeInput, now: number = Date.now()): string {
  const d = toDate(input)
  if (!d) return '—'
  const seconds = Math.round((now - d.getTime()) / 1000)
  const a = Math.abs(seconds)
  let text: string
  if (a < 5) return 'just now'
  if (a < 60) text = `${a} s`
  else if (a < 3600) text = `${Math.floor(a / 60)} min`
  else if (a < 86400) text = `${Math.floor(a / 3600)} h`
  else text = `${Math.floor(a / 86400)} d`
  return seconds >= 0 ? `${text} ago` : `in ${text}`
}

const PROTOCOLS: Record<number, string> = {
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  47: 'GRE',
  50: 'ESP',
  58: 'ICMPv6',
  132: 'SCTP',
}

export function protocolName(proto: number | string | null | undefined): string {
  if (proto === null || proto === undefined) return '—'
  if (typeof proto === 'string') return proto.toUpperCase()
  return PROTOCOLS[proto] ?? String(proto)
}

/** "10.0.0.1:80" or "[2001:db8::1]:80". */
export function endpoint(host: string, port: number | null | undefined): string {
  if (!port) return host
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
