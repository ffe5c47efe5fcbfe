import { Drawer } from '@/components/ui/Drawer'
import { Badge, Time } from '@/components/ui/Misc'
import { endpoint, formatAbsolute, formatBytes, formatCount, protocolName } from '@/lib/format'
import type { FlowRecord } from '@/lib/stream/types'

const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR']

export function tcpFlags(bits: number): string {
  const names = TCP_FLAGS.filter((_, i) => bits & (1 << i))
  return names.length ? names.join(' ') : '—'
}

export function FlowDrawer({ flow, onClose }: { flow: FlowRecord | null; onClose: () => void }) {
  const rows: [string, React.ReactNode][] = flow
    ? [
        ['Node / interface', `${flow.nodeId} / ${flow.interface}`],
        ['Source', endpoint(flow.src, flow.srcPort)],
        ['Destination', endpoint(flow.dst, flow.dstPort)],
        ['Protocol', protocolName(flow.proto)],
        ['VLAN', flow.vlan || 'none'],
        ['State', <Badge key="s" tone={flow.state === 'closed' ? 'neutral' : 'info'}>{flow.state}</Badge>],
        ['End reason', flow.endReason],
        ['Verdict', flow.verdict ?? 'not reported'],
        ['Packets (A→B / B→A)', `${formatCount(flow.packetsAB)} / ${formatCount(flow.packetsBA)}`],
        ['Bytes (A→B / B→A)', `${formatBytes(flow.bytesAB)} / ${formatBytes(flow.bytesBA)}`],
        ['Total', `${formatCount(flow.packets)} packets, ${formatBytes(flow.bytes)}`],
        ['TCP flags seen', flow.proto === 6 ? tcpFlags(flow.tcpFlags) : '—'],
        ['First seen', <span key="f"><Time value={flow.firstSeen} /> · {formatAbsolute(flow.firstSeen)}</span>],
        ['Last seen', <span key="l"><Time value={flow.lastSeen} /> · {formatAbsolute(flow.lastSeen)}</span>],
        ['Duration', `${Math.max(0, (flow.lastSeen - flow.firstSeen) / 1000).toFixed(1)} s`],
      ]
    : []
  return (
    <Drawer open={flow !== null} title="Flow detail" onClose={onClose}>
      <dl className="grid grid-cols-[10rem_1fr] gap-x-4 gap-y-2 text-sm">
        {rows.map(([k, v]) => (
          <div key={k} className="contents">
            <dt className="text-amber-500">{k}</dt>
            <dd className="break-all font-mono text-amber-100">{v}</dd>
          </div>
        ))}
      </dl>
    </Drawer>
  )
}
