import { Fragment } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Card } from '@/components/ui/Card'
import { EmptyState, ErrorNotice, TableSkeleton } from '@/components/ui/Feedback'
import { Badge, PageHeader, Table, td, th, Time } from '@/components/ui/Misc'
import { useAuth } from '@/lib/auth'
import { formatBps, formatCount, formatPps } from '@/lib/format'
import { useStream } from '@/lib/stream/store'
import { rulesQueryOptions } from '@/lib/resources/rules'
import { useNodes } from '@/lib/resources/nodes'

export default function NodesPage() {
  const auth = useAuth()
  const nodes = useNodes()
  const rules = useQuery({ ...rulesQueryOptions(), enabled: auth.can('rules:read') })
  const snapshot = useStream((s) => s.snapshot)
  const stats = new Map(snapshot?.interfaces.map((i) => [i.key, i]) ?? [])
  const currentGeneration = rules.data?.generation
  const limited = auth.nodesFor('dataplane:read')

  return (
    <div>
      <PageHeader
        title="Nodes & interfaces"
        description={limited ? `Your grants show ${limited.length} node(s): ${limited.join(', ') || 'none'}.` : 'Every dataplane that has connected, refreshed every 5 s.'}
      />
      <ErrorNotice error={nodes.error} title="Could not load nodes" onRetry={() => void nodes.refetch()} />
      <Card bodyClassName="p-0">
        {nodes.isLoading ? (
          <TableSkeleton label="Loading nodes" />
        ) : !nodes.data?.length ? (
          <EmptyState title="No dataplane has connected yet">
            Run <code className="text-amber-200">floe dataplane --interface eth0 --node-id edge-1</code> with an API key bound to that node (Administration → API clients), or{' '}
            <code className="text-amber-200">make dev</code> as root for a demo node.
          </EmptyState>
        ) : (
          <Table caption="Nodes and their interfaces">
            <thead>
              <tr>
                <th scope="col" className={th}>Node / interface</th>
                <th scope="col" className={th}>Connected</th>
                <th scope="col" className={th}>Mode</th>
                <th scope="col" className={th}>Attach</th>
                <th scope="col" className={th}>Rules applied</th>
                <th scope="col" className={`${th} text-right`}>Rate</th>
                <th scope="col" className={th}>Loss by source</th>
                <th scope="col" className={th}>Last seen</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-700">
              {nodes.data.map((n) => {
                const behind = currentGeneration !== undefined && n.rules_generation_applied < currentGeneration
                const loss = Object.entries(n.loss)
                return (
                  <Fragment key={n.node_id}>
                    <tr className="bg-slate-800/60">
                      <th scope="row" className={`${td} text-left font-semibold text-amber-300`}>
                        {n.node_id}
                        <div className="text-xs font-normal text-amber-500">
                          v{n.version} · {n.peer}
                        </div>
                      </th>
                      <td className={td}>{n.connected ? <Badge tone="good">connected</Badge> : <Badge tone="bad">disconnected</Badge>}</td>
                      <td className={td} colSpan={2}>
                        <span className="text-xs text-amber-500">{n.capabilities.join(', ') || '—'}</span>
                      </td>
                      <td className={td}>
                        gen {n.rules_generation_applied}
                        {behind && <Badge tone="warn">behind {currentGeneration}</Badge>}
                        {n.rules_error && (
                          <div className="text-xs text-red-300" title={n.rules_error}>
                            {n.rules_error}
                          </div>
                        )}
                      </td>
                      <td className={td} />
                      <td className={td}>
                        {loss.length === 0 ? <span className="text-green-300">none</span> : loss.map(([k, v]) => <div key={k}>{k}: {formatCount(v)}</div>)}
                      </td>
                      <td className={td}>
                        <Time value={n.last_seen} />
                      </td>
                    </tr>
                    {n.interfaces.map((i) => {
                      const s = stats.get(`${n.node_id}/${i.name}`)
                      const ifLoss = Object.entries(s?.loss ?? {})
                      return (
                        <tr key={`${n.node_id}/${i.name}`}>
                          <td className={`${td} pl-8 font-mono text-xs`}>{i.name}</td>
                          <td className={td} />
                          <td className={td}>{i.mode}</td>
                          <td className={td}>{i.attach_mode}</td>
                          <td className={td} />
                          <td className={`${td} text-right tabular-nums`}>
                            {s ? (
                              <>
                                {formatBps(s.bps)}
                                <div className="text-xs text-amber-500">{formatPps(s.pps)}</div>
                              </>
                            ) : (
                              '—'
                            )}
                          </td>
                          <td className={td}>{ifLoss.length === 0 ? '—' : ifLoss.map(([k, v]) => <div key={k}>{k}: {formatCount(v)}</div>)}</td>
                          <td className={td} />
                        </tr>
                      )
                    })}
                  </Fragment>
                )
              })}
            </tbody>
          </Table>
        )}
      </Card>
    </div>
  )
}
