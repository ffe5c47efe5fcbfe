/** The newest flows under the charts, following the stream layer's flow feed (the same
 *  one the Flows page uses: a WebSocket flow subscription). Renders at most LIVE_ROWS rows
 *  whatever the feed holds. */
import { useEffect } from 'react'
import { Link } from 'react-router-dom'
import { Card } from '@/components/ui/Card'
import { EmptyState } from '@/components/ui/Feedback'
import { FlowTableHead } from '@/components/FlowTableHead'
import { Table, td, Time } from '@/components/ui/Misc'
import { endpoint, formatBytes, formatCount, protocolName } from '@/lib/format'
import { MAX_FLOW_ROWS } from '@/lib/stream/flows'
import { getStream, useFlowFeed } from '@/lib/stream/store'

export const LIVE_ROWS = 15

export function LiveFlows({ paused }: { paused: boolean }) {
  const rows = useFlowFeed((s) => s.rows)
  const evicted = useFlowFeed((s) => s.evicted)
  const lost = useFlowFeed((s) => s.lost.queue + s.lost.ring + s.lost.dataplane)
  useEffect(() => {
    const feed = getStream().flows
    feed.setQuery({})
    feed.setLimit(MAX_FLOW_ROWS)
    return () => feed.follow(false)
  }, [])
  useEffect(() => getStream().flows.follow(!paused), [paused])
  const shown = rows.slice(0, LIVE_ROWS)
  return (
    <Card
      title={`Live flows (newest ${LIVE_ROWS} of ${formatCount(rows.length)} held)`}
      actions={
        <Link to="/flows" className="text-sm text-primary-400 underline-offset-2 hover:underline">
          Filter and export
        </Link>
      }
      bodyClassName="p-0"
    >
      {shown.length === 0 ? (
        <EmptyState title="No flows yet">Flows appear when a tap, afpacket or pcap dataplane sees traffic.</EmptyState>
      ) : (
        <Table caption="Newest flows">
          <FlowTableHead />
          <tbody className="divide-y divide-slate-700" data-testid="live-flows">
            {/* Keyed by position: at 1,000 new flows a second every row changes, and updating
                15 rows' text in place is cheaper than removing and creating them. */}
            {shown.map((f, i) => (
              <tr key={i}>
                <td className={td}>
                  <Time value={f.lastSeen} />
                </td>
                <td className={`${td} font-mono text-xs`}>{endpoint(f.src, f.srcPort)}</td>
                <td className={`${td} font-mono text-xs`}>{endpoint(f.dst, f.dstPort)}</td>
                <td className={td}>{protocolName(f.proto)}</td>
                <td className={`${td} text-right tabular-nums`}>{formatCount(f.packets)}</td>
                <td className={`${td} text-right tabular-nums`}>{formatBytes(f.bytes)}</td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
      {evicted > 0 && <p className="px-4 py-2 text-xs text-amber-500">{formatCount(evicted)} older flows left the bounded buffer.</p>}
      {lost > 0 && <p className="px-4 py-2 text-xs text-amber-500">{formatCount(lost)} flow events reported lost (details on the Flows page).</p>}
    </Card>
  )
}
