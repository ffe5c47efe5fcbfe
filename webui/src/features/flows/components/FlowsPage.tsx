/**
 * Flows: a live-follow table (the stream layer's flow feed: a WebSocket flow subscription),
 * the API's filters as chips (refusals shown on the chip), what the server reports lost,
 * paging through what is held (at most MAX_FLOW_ROWS; GET /flows when paused), a detail
 * drawer, CSV/JSON export.
 */
import { useEffect, useMemo, useState } from 'react'
import { useSearchParams } from 'react-router-dom'
import { Download, Pause, Play, RefreshCw } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { EmptyState, ErrorNotice, Notice, TableSkeleton } from '@/components/ui/Feedback'
import { SelectField } from '@/components/ui/Field'
import { FlowTableHead } from '@/components/FlowTableHead'
import { PageHeader, Table, td, Time } from '@/components/ui/Misc'
import { useAuth } from '@/lib/auth'
import { endpoint, formatBytes, formatCount, protocolName } from '@/lib/format'
import { FLOW_FILTER_FIELDS, MAX_FLOW_ROWS, type FlowFeedState, type FlowQuery } from '@/lib/stream/flows'
import { getStream, useFlowFeed } from '@/lib/stream/store'
import type { FlowRecord } from '@/lib/stream/types'
import { download, toCsv, toJson } from '../api/export'
import { FilterChips } from './FilterChips'
import { FlowDrawer } from './FlowDrawer'

const PAGE_SIZES = [25, 50, 100]

const STATUS_TEXT: Record<FlowFeedState['status'], string> = {
  live: 'following live',
  subscribing: 'subscribing to live flows…',
  waiting: 'waiting for the live stream to reconnect',
  refused: 'not following: the server refused this filter',
  paused: 'paused',
}

/** What the server reported lost for this view, by where (nothing when nothing was). */
function LossLine({ lost, evicted }: Pick<FlowFeedState, 'lost' | 'evicted'>) {
  const parts = [
    lost.queue > 0 && `${formatCount(lost.queue)} dropped because this page read too slowly`,
    lost.ring > 0 && `${formatCount(lost.ring)} overwritten in the server's ring before a resume`,
    lost.dataplane > 0 && `${formatCount(lost.dataplane)} lost by dataplanes`,
    evicted > 0 && `${formatCount(evicted)} older flows left the table (it holds ${formatCount(MAX_FLOW_ROWS)} at most)`,
  ].filter(Boolean)
  if (!parts.length) return null
  return (
    <p className="mb-4 text-sm text-amber-500" data-testid="flows-lost">
      Events lost: {parts.join(' · ')}.
    </p>
  )
}

function queryFromParams(params: URLSearchParams): FlowQuery {
  const q: FlowQuery = {}
  for (const f of FLOW_FILTER_FIELDS) {
    const v = params.get(f)
    if (v) q[f] = v
  }
  return q
}

export default function FlowsPage() {
  const [params, setParams] = useSearchParams()
  const feed = getStream().flows
  // Following rides the live stream, which needs stats:read; without it, GET /flows on demand.
  const auth = useAuth()
  const canFollow = auth.canSomewhere('stats:read')
  const known = auth.me !== null // (routes render once /me is known; a bare page may not)
  const rows = useFlowFeed((s) => s.rows)
  const following = useFlowFeed((s) => s.following)
  const status = useFlowFeed((s) => s.status)
  const loading = useFlowFeed((s) => s.loading)
  const error = useFlowFeed((s) => s.error)
  const fieldErrors = useFlowFeed((s) => s.fieldErrors)
  const updatedAt = useFlowFeed((s) => s.updatedAt)
  const limit = useFlowFeed((s) => s.limit)
  const lost = useFlowFeed((s) => s.lost)
  const evicted = useFlowFeed((s) => s.evicted)
  const gap = useFlowFeed((s) => s.gap)
  const [pageSize, setPageSize] = useState(50)
  const [page, setPage] = useState(0)
  const [selected, setSelected] = useState<FlowRecord | null>(null)
  const query = useMemo(() => queryFromParams(params), [params])
  const queryKey = JSON.stringify(query)

  useEffect(() => {
    if (!known) return
    feed.setQuery(query)
    feed.follow(canFollow)
    return () => feed.follow(false)
  }, [queryKey, canFollow, known]) // eslint-disable-line react-hooks/exhaustive-deps

  const pages = Math.max(1, Math.ceil(rows.length / pageSize))
  const current = Math.min(page, pages - 1)
  const shown = rows.slice(current * pageSize, (current + 1) * pageSize)
  const setQuery = (q: FlowQuery) => {
    setPage(0)
    const next = new URLSearchParams()
    for (const f of FLOW_FILTER_FIELDS) if (q[f]) next.set(f, q[f] as string)
    setParams(next, { replace: true })
  }
  const refused = Object.keys(fieldErrors).length > 0
  const waitingForFirst = rows.length === 0 && updatedAt === null && !error && !refused && (loading || status === 'subscribing' || status === 'waiting')
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')

  return (
    <div>
      <PageHeader
        title="Flows"
        description={
          <>
            Newest first; <span data-testid="flows-status" data-status={status}>{STATUS_TEXT[status]}</span>. Holds up to {formatCount(MAX_FLOW_ROWS)} flows.
            {updatedAt && (
              <>
                {' '}
                Updated <Time value={updatedAt} />.
              </>
            )}
          </>
        }
        actions={
          <>
            {canFollow && (
              <Button variant={following ? 'secondary' : 'primary'} onClick={() => feed.follow(!following)} aria-pressed={!following} icon={following ? <Pause className="w-4 h-4" aria-hidden /> : <Play className="w-4 h-4" aria-hidden />}>
                {following ? 'Pause' : 'Follow'}
              </Button>
            )}
            {!following && (
              <Button variant="secondary" disabled={loading} onClick={() => void feed.refresh()} icon={<RefreshCw className="w-4 h-4" aria-hidden />}>
                Refresh
              </Button>
            )}
            <Button variant="secondary" disabled={shown.length === 0} onClick={() => download(`floe-flows-${stamp}.csv`, toCsv(shown), 'text/csv')} icon={<Download className="w-4 h-4" aria-hidden />}>
              CSV
            </Button>
            <Button variant="secondary" disabled={shown.length === 0} onClick={() => download(`floe-flows-${stamp}.json`, toJson(shown), 'application/json')} icon={<Download className="w-4 h-4" aria-hidden />}>
              JSON
            </Button>
          </>
        }
      />
      <Card className="mb-4">
        <FilterChips query={query} onChange={setQuery} errors={fieldErrors} />
      </Card>
      {!canFollow && (
        <div className="mb-4">
          <Notice>Following flows live needs the stats:read scope (they ride the dashboard&apos;s live stream); this table is what GET /flows answered — Refresh reads it again.</Notice>
        </div>
      )}
      {error && <div className="mb-4"><ErrorNotice error={error} title="Could not load flows" onRetry={() => void feed.refresh()} /></div>}
      {gap && (
        <div className="mb-4" data-testid="flows-gap">
          <Notice tone="warning">
            Resumed after a reconnect{gap.count > 0 ? `: ${formatCount(gap.count)} events had already left the server's ring and are missing from this table` : ''}
            {gap.detail ? `${gap.count > 0 ? ' — ' : ': '}${gap.detail}` : ''}.
          </Notice>
        </div>
      )}
      <LossLine lost={lost} evicted={evicted} />
      <Card bodyClassName="p-0">
        {waitingForFirst ? (
          <TableSkeleton label="Loading flows" />
        ) : rows.length === 0 && refused ? (
          <EmptyState title="Filter refused">Correct or remove the chip marked in red.</EmptyState>
        ) : rows.length === 0 ? (
          <EmptyState title="No flows match">
            {Object.keys(query).length ? 'Remove a filter chip to widen the search.' : 'Flows appear once a dataplane in tap, afpacket or pcap mode sees traffic.'}
          </EmptyState>
        ) : (
          <Table caption="Flows, newest first">
            <FlowTableHead extra={['State', 'Node / if']} />
            <tbody className="divide-y divide-slate-700" data-testid="flows-body">
              {shown.map((f) => (
                <tr key={f.key} className="cursor-pointer hover:bg-slate-800" onClick={() => setSelected(f)}>
                  <td className={td}>
                    <button type="button" className="text-primary-400 underline-offset-2 hover:underline focus-visible:ring-2 focus-visible:ring-primary-500" onClick={(e) => { e.stopPropagation(); setSelected(f) }} aria-label={`Details of flow ${endpoint(f.src, f.srcPort)} to ${endpoint(f.dst, f.dstPort)}`}>
                      <Time value={f.lastSeen} />
                    </button>
                  </td>
                  <td className={`${td} font-mono text-xs`} data-testid="flow-src">{endpoint(f.src, f.srcPort)}</td>
                  <td className={`${td} font-mono text-xs`}>{endpoint(f.dst, f.dstPort)}</td>
                  <td className={td}>{protocolName(f.proto)}</td>
                  <td className={`${td} text-right tabular-nums`}>{formatCount(f.packets)}</td>
                  <td className={`${td} text-right tabular-nums`}>{formatBytes(f.bytes)}</td>
                  <td className={td}>{f.state}</td>
                  <td className={td}>{f.nodeId}/{f.interface}</td>
                </tr>
              ))}
            </tbody>
          </Table>
        )}
        <div className="flex flex-wrap items-center justify-between gap-3 border-t border-slate-700 px-4 py-3 text-sm">
          <span className="text-amber-300">
            {rows.length ? `${current * pageSize + 1}–${Math.min(rows.length, (current + 1) * pageSize)} of ${formatCount(rows.length)}` : '0 flows'}
          </span>
          <div className="flex items-end gap-2">
            <SelectField label="Rows per page" value={String(pageSize)} onChange={(e) => { setPageSize(Number(e.target.value)); setPage(0) }} className="w-32">
              {PAGE_SIZES.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </SelectField>
            <SelectField label="History held" value={String(limit)} onChange={(e) => feed.setLimit(Number(e.target.value))} className="w-32">
              {[200, 500, 1000].map((n) => (
                <option key={n} value={n}>
                  {n} flows
                </option>
              ))}
            </SelectField>
            <Button variant="secondary" disabled={current === 0} onClick={() => setPage(current - 1)}>
              Newer
            </Button>
            <Button variant="secondary" disabled={current >= pages - 1} onClick={() => setPage(current + 1)}>
              Older
            </Button>
          </div>
        </div>
      </Card>
      <FlowDrawer flow={selected} onClose={() => setSelected(null)} />
    </div>
  )
}
