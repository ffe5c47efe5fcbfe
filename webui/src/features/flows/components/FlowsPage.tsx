/**
 * Flows: a live-follow table (the stream layer's flow feed), the API's filters as chips,
 * paging through what is held (at most MAX_FLOW_ROWS), a detail drawer, CSV/JSON export.
 */
import { useEffect, useMemo, useState } from 'react'
import { useSearchParams } from 'react-router-dom'
import { Download, Pause, Play } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { EmptyState, ErrorNotice, TableSkeleton } from '@/components/ui/Feedback'
import { SelectField } from '@/components/ui/Field'
import { PageHeader, Table, td, th, Time } from '@/components/ui/Misc'
import { endpoint, formatBytes, formatCount, protocolName } from '@/lib/format'
import { FLOW_FILTER_FIELDS, MAX_FLOW_ROWS, type FlowQuery } from '@/lib/stream/flows'
import { getStream, useFlowFeed } from '@/lib/stream/store'
import type { FlowRecord } from '@/lib/stream/types'
import { download, toCsv, toJson } from '../api/export'
import { FilterChips } from './FilterChips'
import { FlowDrawer } from './FlowDrawer'

const PAGE_SIZES = [25, 50, 100]

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
  const rows = useFlowFeed((s) => s.rows)
  const following = useFlowFeed((s) => s.following)
  const error = useFlowFeed((s) => s.error)
  const updatedAt = useFlowFeed((s) => s.updatedAt)
  const limit = useFlowFeed((s) => s.limit)
  const [pageSize, setPageSize] = useState(50)
  const [page, setPage] = useState(0)
  const [selected, setSelected] = useState<FlowRecord | null>(null)
  const query = useMemo(() => queryFromParams(params), [params])
  const queryKey = JSON.stringify(query)

  useEffect(() => {
    feed.setQuery(query)
    feed.follow(true)
    return () => feed.follow(false)
  }, [queryKey]) // eslint-disable-line react-hooks/exhaustive-deps

  const pages = Math.max(1, Math.ceil(rows.length / pageSize))
  const current = Math.min(page, pages - 1)
  const shown = rows.slice(current * pageSize, (current + 1) * pageSize)
  const setQuery = (q: FlowQuery) => {
    setPage(0)
    const next = new URLSearchParams()
    for (const f of FLOW_FILTER_FIELDS) if (q[f]) next.set(f, q[f] as string)
    setParams(next, { replace: true })
  }
  const fieldErrors: Partial<Record<keyof FlowQuery, string>> = {}
  for (const fe of error?.fieldErrors ?? []) {
    const name = fe.loc[fe.loc.length - 1]
    if (typeof name === 'string' && (FLOW_FILTER_FIELDS as string[]).includes(name)) fieldErrors[name as keyof FlowQuery] = fe.msg
  }
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')

  return (
    <div>
      <PageHeader
        title="Flows"
        description={
          <>
            Newest first; {following ? 'following live (refreshed every 2 s)' : 'paused'}. Holds up to {formatCount(MAX_FLOW_ROWS)} flows.
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
            <Button variant={following ? 'secondary' : 'primary'} onClick={() => feed.follow(!following)} aria-pressed={!following} icon={following ? <Pause className="w-4 h-4" aria-hidden /> : <Play className="w-4 h-4" aria-hidden />}>
              {following ? 'Pause' : 'Follow'}
            </Button>
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
      {error && <div className="mb-4"><ErrorNotice error={error} title="Could not load flows" onRetry={() => void feed.refresh()} /></div>}
      <Card bodyClassName="p-0">
        {rows.length === 0 && updatedAt === null && !error ? (
          <TableSkeleton label="Loading flows" />
        ) : rows.length === 0 ? (
          <EmptyState title="No flows match">
            {Object.keys(query).length ? 'Remove a filter chip to widen the search.' : 'Flows appear once a dataplane in tap, afpacket or pcap mode sees traffic.'}
          </EmptyState>
        ) : (
          <Table caption="Flows, newest first">
            <thead>
              <tr>
                <th scope="col" className={th}>Last seen</th>
                <th scope="col" className={th}>Source</th>
                <th scope="col" className={th}>Destination</th>
                <th scope="col" className={th}>Proto</th>
                <th scope="col" className={`${th} text-right`}>Packets</th>
                <th scope="col" className={`${th} text-right`}>Bytes</th>
                <th scope="col" className={th}>State</th>
                <th scope="col" className={th}>Node / if</th>
              </tr>
            </thead>
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
