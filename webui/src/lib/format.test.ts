import { describe, expect, it } from 'vitest'
import { endpoint, formatAbsolute, formatBps, formatBytes, formatPps, formatRelative, protocolName, toDate } from './format'

describe('format', () => {
  it('formats bits with SI and bytes with binary units', () => {
    expect(formatBps(0)).toBe('0 b/s')
    expect(formatBps(2_391_436)).toBe('2.39 Mb/s')
    expect(formatBps(12_500_000_000)).toBe('12.5 Gb/s')
    expect(formatPps(480)).toBe('480 pkt/s')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.50 KiB')
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.00 GiB')
    expect(formatBps(null)).toBe('—')
  })
  it('reads seconds, milliseconds, nanoseconds and unzoned ISO as UTC', () => {
    const ms = Date.UTC(2026, 11, 7, 10, 0, 0)
    expect(toDate(ms / 1000)?.getTime()).toBe(ms)
    expect(toDate(ms)?.getTime()).toBe(ms)
    expect(toDate(ms * 1e6)?.getTime()).toBe(ms)
    expect(toDate('2026-12-07T10:00:00')?.getTime()).toBe(ms)
    expect(formatAbsolute(ms)).toBe('2026-12-07 10:00:00 UTC')
  })
  it('says relative times both ways', () => {
    const now = Date.UTC(2026, 0, 1)
    expect(formatRelative(now - 2000, now)).toBe('just now')
    expect(formatRelative(now - 42_000, now)).toBe('42 s ago')
    expect(formatRelative(now - 3 * 3600_000, now)).toBe('3 h ago')
    expect(formatRelative(now + 5 * 60_000, now)).toBe('in 5 min')
  })
  it('names protocols and brackets IPv6 endpoints', () => {
    expect(protocolName(6)).toBe('TCP')
    expect(protocolName(99)).toBe('99')
    expect(endpoint('2001:db8::1', 443)).toBe('[2001:db8::1]:443')
    expect(endpoint('10.0.0.1', 0)).toBe('10.0.0.1')
  })
})
