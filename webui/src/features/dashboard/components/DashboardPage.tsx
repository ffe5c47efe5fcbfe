/**
 * Live dashboard: bits/s and packets/s per interface, passed/dropped/malformed, protocol
 * mix, top hosts and ports, loss by source; pause, a time window, node/interface pickers.
 * Charts are fed by the stream store outside React; the panels re-render once a second.
 */
import { useMemo, useRef } from 'react'
import { Pause, Play } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Card, StatTile } from '@/components/ui/Card'
import { EmptyState, Skeleton } from '@/components/ui/Feedback'
import { SelectField } from '@/components/ui/Field'
import { PageHeader, Table, td, th } from '@/components/ui/Misc'
import { formatBps, formatBytes, formatCount, formatPercent, formatPps, formatSI } from '@/lib/format'
import { PROTOCOLS, seriesKey } from '@/lib/stream/history'
import { useStream } from '@/lib/stream/store'
import type { StatsSnapshot } from '@/lib/stream/types'
import { aggregate } from '../hooks/aggregate'
import { selectInterfaces, useDashboardUi, WINDOWS } from '../hooks/dashboard-ui'
import { LiveChart, type SeriesDef } from './LiveChart'
import { LiveFlows } from './LiveFlows'
import { useAuth } from '@/lib/auth'

const PALETTE = ['#38bdf8', '#fbbf24', '#4ade80', '#f472b6', '#a78bfa', '#fb923c']
/** Per-interface lines up to this many; beyond it one summed line. */
const MAX_LINES = 6

function useFrozenSnapshot(): StatsSnapshot | null {
  const snapshot = useStream((s) => s.snapshot)
  const paused = useDashboardUi((s) => s.paused)
  const frozen = useRef<StatsSnapshot | null>(null)
  if (!paused || frozen.current === null) frozen.current = snapshot
  return paused ? frozen.current : snapshot
}

function Pickers({ interfaces }: { interfaces: string[] }) {
  const ui = useDashboardUi()
  const nodes = [...new Set(interfaces.map((k) => k.split('/')[0] ?? ''))].sort()
  const ifaces = interfaces.filter((k) => !ui.node || k.startsWith(`${ui.node}/`)).map((k) => k.split('/').slice(1).join('/'))
  return (
    <div className="flex flex-wrap items-end gap-3">
      <SelectField label="Node" value={ui.node} onChange={(e) => ui.setNode(e.target.value)} className="w-44">
        <option value="">All nodes</option>
        {nodes.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </SelectField>
      <SelectField label="Interface" value={ui.iface} onChange={(e) => ui.setIface(e.target.value)} className="w-44">
        <option value="">All interfaces</option>
        {[...new Set(ifaces)].sort().map((i) => (
          <option key={i} value={i}>
            {i}
          </option>
        ))}
      </SelectField>
      <div role="group" aria-label="Time window" className="flex rounded-lg border border-slate-600">
        {WINDOWS.map((w) => (
          <button
            key={w.key}
            type="button"
            aria-pressed={ui.window === w.key}
            onClick={() => ui.setWindow(w.key)}
            className={`px-3 py-2 text-sm first:rounded-l-lg last:rounded-r-lg focus-visible:ring-2 focus-visible:ring-primary-500 ${ui.window === w.key ? 'bg-primary-700 text-white' : 'text-amber-300 hover:bg-slate-700'}`}
          >
            {w.label}
          </button>
        ))}
      </div>
      <Button variant={ui.paused ? 'primary' : 'secondary'} onClick={ui.togglePause} aria-pressed={ui.paused} icon={ui.paused ? <Play className="w-4 h-4" aria-hidden /> : <Pause className="w-4 h-4" aria-hidden />}>
        {ui.paused ? 'Resume' : 'Pause'}
      </Button>
    </div>
  )
}

function Bar({ part, whole, label }: { part: number; whole: number; label: string }) {
  const pct = whole > 0 ? Math.min(100, (part / whole) * 100) : 0
  return (
    <div className="h-2 w-full rounded bg-slate-700" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)} aria-label={label}>
      <div className="h-2 rounded bg-primary-400" style={{ width: `${pct}%` }} />
    </div>
  )
}

export default function DashboardPage() {
  const canFlows = useAuth().canSomewhere('flows:read')
  const interfaces = useStream((s) => s.interfaces)
  const status = useStream((s) => s.status)
  const snapshot = useFrozenSnapshot()
  const node = useDashboardUi((s) => s.node)
  const iface = useDashboardUi((s) => s.iface)
  const paused = useDashboardUi((s) => s.paused)
  const selected = useMemo(() => selectInterfaces(interfaces, node, iface), [interfaces, node, iface])
  const selectedKey = selected.join(',')

  const perInterface = selected.length <= MAX_LINES
  const lineDefs: SeriesDef[] = useMemo(
    () => (perInterface ? selected.map((k, i) => ({ label: k, color: PALETTE[i % PALETTE.length] ?? '#38bdf8' })) : [{ label: `all ${selected.length} interfaces`, color: PALETTE[0] ?? '#38bdf8' }]),
    [selectedKey, perInterface], // eslint-disable-line react-hooks/exhaustive-deps
  )
  const rateData = (metric: 'bps' | 'pps') =>
    perInterface
      ? (h: Parameters<Parameters<typeof LiveChart>[0]['data']>[0], since: number) => h.columns(selected.map((k) => seriesKey(k, metric)), since)
      : (h: Parameters<Parameters<typeof LiveChart>[0]['data']>[0], since: number) => h.summed(metric, selected, since)

  const shown = useMemo(() => snapshot?.interfaces.filter((i) => selected.includes(i.key)) ?? [], [snapshot, selectedKey]) // eslint-disable-line react-hooks/exhaustive-deps
  const agg = useMemo(() => aggregate(shown), [shown])
  const protoTotal = agg.protocols.reduce((s, p) => s + p.packets, 0)
  const hostTotal = agg.topHosts[0]?.bytes ?? 0
  const portTotal = agg.topPorts[0]?.bytes ?? 0

  if (!snapshot && (status === 'connecting' || status === 'idle' || status === 'reconnecting')) {
    return (
      <div>
        <PageHeader title="Dashboard" description="Live traffic across your nodes." />
        <div role="status" aria-label="Waiting for live data" className="grid gap-4 md:grid-cols-2">
          {[0, 1, 2, 3].map((i) => (
            <Skeleton key={i} className="h-56 w-full" />
          ))}
        </div>
      </div>
    )
  }

  return (
    <div>
      <PageHeader title="Dashboard" description={paused ? 'Paused: the view is frozen, data keeps arriving.' : 'Live traffic, one point a second.'} actions={<Pickers interfaces={interfaces} />} />
      {interfaces.length === 0 ? (
        <Card>
          <EmptyState title="No dataplane has reported yet">
            Start one on a host with <code className="text-amber-200">floe dataplane --interface eth0 --mode tap</code>, or run <code className="text-amber-200">make dev</code> as root for the demo
            traffic. Numbers appear here within a second of its first report.
          </EmptyState>
        </Card>
      ) : (
        <>
          <div className="mb-6 grid grid-cols-2 gap-4 lg:grid-cols-3 xl:grid-cols-6" data-testid="stat-tiles">
            <StatTile label="Throughput" value={formatBps(agg.bps)} hint="bits per second" />
            <StatTile label="Packet rate" value={formatPps(agg.pps)} />
            <StatTile label="Dropped" value={formatCount(agg.dropped)} hint="packets, since start" />
            <StatTile label="Malformed" value={formatCount(agg.malformed)} hint="packets, since start" />
            <StatTile label="Nodes" value={`${snapshot?.nodes.connected ?? 0} / ${snapshot?.nodes.known ?? 0}`} hint="connected / known" />
            <StatTile label="Flows tracked" value={formatCount(snapshot?.flows.tracked)} hint={`${formatCount(snapshot?.flows.evicted)} evicted`} />
          </div>
          <div className="grid gap-4 xl:grid-cols-2">
            <Card>
              <LiveChart testId="chart-bps" title="Bits per second" series={lineDefs} data={rateData('bps')} format={(v) => formatBps(v)} />
            </Card>
            <Card>
              <LiveChart testId="chart-pps" title="Packets per second" series={lineDefs} data={rateData('pps')} format={(v) => formatPps(v)} />
            </Card>
            <Card>
              <LiveChart
                testId="chart-verdicts"
                title="Passed, dropped, malformed (packets/s)"
                series={[
                  { label: 'passed', color: '#4ade80' },
                  { label: 'dropped', color: '#f87171' },
                  { label: 'malformed', color: '#fbbf24' },
                ]}
                data={(h, since) => {
                  const p = h.summed('passed', selected, since)
                  return [p[0] ?? [], p[1] ?? [], h.summed('dropped', selected, since)[1] ?? [], h.summed('malformed', selected, since)[1] ?? []]
                }}
                format={(v) => formatSI(v, '/s')}
              />
            </Card>
            <Card>
              <LiveChart
                testId="chart-protocols"
                title="Protocol mix (packets/s)"
                series={PROTOCOLS.map((p, i) => ({ label: p, color: PALETTE[i % PALETTE.length] ?? '#38bdf8' }))}
                data={(h, since) => {
                  const cols = PROTOCOLS.map((p) => h.summed(`proto:${p}`, selected, since))
                  return [cols[0]?.[0] ?? [], ...cols.map((c) => c[1] ?? [])]
                }}
                format={(v) => formatSI(v, '/s')}
              />
            </Card>
          </div>
          <div className="offscreen-lazy mt-4 grid gap-4 lg:grid-cols-2 2xl:grid-cols-4">
            <Card title={`Protocol mix (last ${Math.round(agg.windowSeconds) || 10} s)`}>
              {agg.protocols.length === 0 ? (
                <p className="text-sm text-amber-500">No per-protocol window yet (inline mode reports none).</p>
              ) : (
                <ul className="space-y-2">
                  {agg.protocols.map((p) => (
                    <li key={p.name}>
                      <div className="flex justify-between text-sm">
                        <span className="uppercase text-amber-300">{p.name}</span>
                        <span className="tabular-nums text-amber-200">
                          {formatPercent(p.packets, protoTotal)} · {formatBytes(p.bytes)}
                        </span>
                      </div>
                      <Bar part={p.packets} whole={protoTotal} label={`${p.name} share of packets`} />
                    </li>
                  ))}
                </ul>
              )}
            </Card>
            <Card title="Top hosts (bytes)" bodyClassName="p-0">
              <Table caption="Top hosts by bytes">
                <thead>
                  <tr>
                    <th scope="col" className={th}>Host</th>
                    <th scope="col" className={`${th} text-right`}>Bytes</th>
                    <th scope="col" className={`${th} w-24`}>Share</th>
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-700">
                  {agg.topHosts.map((h) => (
                    <tr key={h.host}>
                      <td className={`${td} font-mono text-xs`}>{h.host}</td>
                      <td className={`${td} text-right tabular-nums`}>{formatBytes(h.bytes)}</td>
                      <td className={td}>
                        <Bar part={h.bytes} whole={hostTotal} label={`${h.host} relative volume`} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </Table>
              {agg.approximate && <p className="px-3 py-2 text-xs text-amber-500">Approximate: lower bounds (a top list was full).</p>}
            </Card>
            <Card title="Top ports (bytes)" bodyClassName="p-0">
              <Table caption="Top ports by bytes">
                <thead>
                  <tr>
                    <th scope="col" className={th}>Port</th>
                    <th scope="col" className={`${th} text-right`}>Packets</th>
                    <th scope="col" className={`${th} text-right`}>Bytes</th>
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-700">
                  {agg.topPorts.map((p) => (
                    <tr key={p.port}>
                      <td className={`${td} tabular-nums`}>{p.port}</td>
                      <td className={`${td} text-right tabular-nums`}>{formatCount(p.packets)}</td>
                      <td className={`${td} text-right tabular-nums`}>
                        {formatBytes(p.bytes)}
                        <span className="sr-only"> ({formatPercent(p.bytes, portTotal)} of the top port)</span>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </Table>
            </Card>
            <Card title="Loss by source">
              {agg.loss.length === 0 ? (
                <p className="text-sm text-green-300">No loss reported: every packet the dataplane saw was counted.</p>
              ) : (
                <ul className="space-y-1 text-sm">
                  {agg.loss.map((l) => (
                    <li key={l.source} className="flex justify-between">
                      <span className="text-amber-300">{l.source}</span>
                      <span className="tabular-nums text-red-300">{formatCount(l.count)}</span>
                    </li>
                  ))}
                </ul>
              )}
            </Card>
          </div>
          {canFlows && (
            <div className="offscreen-lazy mt-4">
              <LiveFlows paused={paused} />
            </div>
          )}
        </>
      )}
    </div>
  )
}
