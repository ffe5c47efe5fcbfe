import { describe, expect, it } from 'vitest'
import { decodeFlow } from '@/lib/stream/decode'
import { toCsv, toJson } from './export'

const flow = decodeFlow({ node_id: 'n', interface: '=cmd|x', src: '10.0.0.1', dst: '2001:db8::1', src_port: 1234, dst_port: 443, proto: 6, packets: 3, bytes: 180, first_seen_unix_ns: 1.7e18, last_seen_unix_ns: 1.7e18 + 1e9, state: 'new', end_reason: 'none' })

describe('flow export', () => {
  it('writes CSV with a header, quoting, and spreadsheet formulas neutralised', () => {
    const csv = toCsv([flow]).trim().split('\n')
    expect(csv[0]).toMatch(/^node_id,interface,src,src_port,dst,dst_port,proto/)
    expect(csv[1]).toContain("'=cmd|x")
    expect(csv[1]).toContain('2001:db8::1,443,TCP')
    expect(csv).toHaveLength(2)
  })
  it('writes the same rows as JSON', () => {
    const rows = JSON.parse(toJson([flow])) as Record<string, unknown>[]
    expect(rows[0]).toMatchObject({ src: '10.0.0.1', dst_port: 443, proto: 'TCP', packets: 3 })
    expect(rows[0]?.first_seen).toBe(new Date(1.7e12).toISOString())
  })
})
