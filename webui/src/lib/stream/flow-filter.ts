/**
 * The flows table's filter chips — GET /flows's parameters — as the WebSocket subscription's
 * `FlowFilter` (floe.observer.v1, protobuf's JSON form), and a refusal from either path put
 * back on the chip it names. One chip is one criterion; chips combine with AND, exactly as
 * GET /flows combines its parameters and as one `allow` filter combines its fields.
 */
import { toApiError } from '../api-client'

/** GET /flows's filters: each combines with AND. */
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

export type FlowFieldErrors = Partial<Record<keyof FlowQuery, string>>

/** `FlowFilter` in protobuf's JSON mapping (proto field names, enum value names). */
export interface FlowFilterJson {
  ip?: string[]
  port?: number[]
  protocol?: string[]
  node?: string[]
  interface?: string[]
  state?: string[]
  end_reason?: string[]
}

const FILTER_FIELD: Record<keyof FlowQuery, keyof FlowFilterJson> = {
  ip: 'ip',
  port: 'port',
  proto: 'protocol',
  node: 'node',
  interface: 'interface',
  state: 'state',
  end_reason: 'end_reason',
}

/** The names GET /flows and the observer share (observer.proto's enums, lower case). */
export const FLOW_STATES = ['unspecified', 'new', 'established', 'closing', 'closed'] as const
export const END_REASONS = ['none', 'idle_timeout', 'active_timeout', 'tcp_fin', 'tcp_rst', 'evicted', 'shutdown'] as const

const ENUMS = {
  state: { prefix: 'FLOW_STATE_', names: FLOW_STATES as readonly string[] },
  end_reason: { prefix: 'END_REASON_', names: END_REASONS as readonly string[] },
}

/** `Established`, `tcp-fin`, `FLOW_STATE_NEW` → the lower-case name, or null when unknown. */
function enumName(kind: keyof typeof ENUMS, text: string): string | null {
  const { prefix, names } = ENUMS[kind]
  const name = text.trim().toLowerCase().replace(/-/g, '_').replace(prefix.toLowerCase(), '')
  return names.includes(name) ? name : null
}

const listOf = (text: string) => text.split(',').map((v) => v.trim()).filter(Boolean)

/** A uint32 the server can read; its range (0-65535) is the server's to judge. */
const portPattern = /^\d{1,10}$/

/**
 * The chips as one `allow` filter (null: no chip, every flow), or what is wrong with them
 * before anything is sent: a port that is not a number, a state or end reason with no name.
 */
export function toFlowFilter(query: FlowQuery): { filter: FlowFilterJson | null; errors: FlowFieldErrors } {
  const filter: FlowFilterJson = {}
  const errors: FlowFieldErrors = {}
  for (const field of FLOW_FILTER_FIELDS) {
    const raw = query[field]?.trim()
    if (!raw) continue
    if (field === 'state' || field === 'end_reason') {
      const values = listOf(raw)
      const names = values.map((v) => enumName(field, v))
      const bad = values.filter((_, i) => names[i] === null)
      if (bad.length || !values.length) errors[field] = `${bad.join(', ') || raw} is not one of ${ENUMS[field].names.join(', ')}`
      else filter[field] = (names as string[]).map((n) => ENUMS[field].prefix + n.toUpperCase())
    } else if (field === 'port') {
      if (portPattern.test(raw) && Number(raw) <= 0xffffffff) filter.port = [Number(raw)]
      else errors.port = 'a port is a number, 0-65535'
    } else {
      filter[FILTER_FIELD[field] as 'ip' | 'protocol' | 'node' | 'interface'] = [raw]
    }
  }
  return { filter: Object.keys(filter).length ? filter : null, errors }
}

/** The query as GET /flows wants it: state and end-reason names in their canonical form. */
export function toHttpQuery(query: FlowQuery): FlowQuery {
  const out = { ...query }
  for (const field of ['state', 'end_reason'] as const) {
    const raw = out[field]
    if (raw) out[field] = listOf(raw).map((v) => enumName(field, v) ?? v).join(',')
  }
  return out
}

/** `filter.allow[0].protocol` (a subscription refusal's field) → the `proto` chip. */
export function chipOfFilterField(field: string | null): keyof FlowQuery | null {
  const match = field ? /^filter\.allow\[\d+\]\.(\w+)/.exec(field) : null
  if (!match) return null
  const found = FLOW_FILTER_FIELDS.find((f) => FILTER_FIELD[f] === match[1])
  return found ?? null
}

/** GET /flows's 422 (`details: {"param": name}`, or pydantic's list) → the chip it names. */
export function chipOfApiError(error: unknown): keyof FlowQuery | null {
  const e = toApiError(error)
  const details = e.details as { param?: unknown } | null
  const names = [details && typeof details === 'object' && !Array.isArray(details) ? details.param : undefined, ...e.fieldErrors.map((fe) => fe.loc[fe.loc.length - 1])]
  const found = names.find((n): n is keyof FlowQuery => typeof n === 'string' && (FLOW_FILTER_FIELDS as string[]).includes(n))
  return found ?? null
}
