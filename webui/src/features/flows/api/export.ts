/** CSV/JSON export of exactly the rows shown (a Blob download; nothing leaves the browser). */
import type { FlowRecord } from '@/lib/stream/types'
import { protocolName } from '@/lib/format'

export const EXPORT_COLUMNS = [
  'node_id', 'interface', 'src', 'src_port', 'dst', 'dst_port', 'proto', 'vlan', 'packets', 'bytes',
  'packets_ab', 'bytes_ab', 'packets_ba', 'bytes_ba', 'first_seen', 'last_seen', 'state', 'end_reason',
] as const

export function flowToRow(f: FlowRecord): Record<(typeof EXPORT_COLUMNS)[number], string | number> {
  return {
    node_id: f.nodeId,
    interface: f.interface,
    src: f.src,
    src_port: f.srcPort,
    dst: f.dst,
    dst_port: f.dstPort,
    proto: protocolName(f.proto),
    vlan: f.vlan,
    packets: f.packets,
    bytes: f.bytes,
    packets_ab: f.packetsAB,
    bytes_ab: f.bytesAB,
    packets_ba: f.packetsBA,
    bytes_ba: f.bytesBA,
    first_seen: new Date(f.firstSeen).toISOString(),
    last_seen: new Date(f.lastSeen).toISOString(),
    state: f.state,
    end_reason: f.endReason,
  }
}

function csvCell(value: string | number): string {
  const text = String(value)
  // Quote when needed; neutralise spreadsheet formulas (=, +, -, @ at the start).
  const safe = /^[=+\-@]/.test(text) && typeof value === 'string' ? `'${text}` : text
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}

export function toCsv(rows: FlowRecord[]): string {
  const lines = [EXPORT_COLUMNS.join(',')]
  for (const f of rows) {
    const row = flowToRow(f)
    lines.push(EXPORT_COLUMNS.map((c) => csvCell(row[c])).join(','))
  }
  return lines.join('\n') + '\n'
}

export function toJson(rows: FlowRecord[]): string {
  return JSON.stringify(rows.map(flowToRow), null, 2)
}

export function download(filename: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}
