/**
 * Rules: the current rule set with live hit counters (from the stream), add/edit/delete
 * (one PUT of the whole set; errors on the field), the default action, and what each node
 * has acknowledged. Write controls exist only for rules:write.
 */
import { useMemo, useState } from 'react'
import { useSearchParams } from 'react-router-dom'
import { Pencil, Plus, Trash2 } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { Drawer } from '@/components/ui/Drawer'
import { EmptyState, ErrorNotice, Notice, TableSkeleton } from '@/components/ui/Feedback'
import { SelectField } from '@/components/ui/Field'
import { Badge, PageHeader, Table, td, th, Time } from '@/components/ui/Misc'
import { TabPanel, Tabs } from '@/components/ui/Tabs'
import { ApiError, toApiError } from '@/lib/api-client'
import { useAuth } from '@/lib/auth'
import { formatBytes, formatCount } from '@/lib/format'
import { useStream } from '@/lib/stream/store'
import { useNodes } from '@/lib/resources/nodes'
import { useRules, useSaveRules, type Action, type Rule } from '@/lib/resources/rules'
import { draftErrors } from './rule-errors'
import { draftFromRule, ruleFromDraft, RuleEditor, type DraftErrors, type RuleDraft } from './RuleEditor'

type TabKey = 'rules' | 'acks'

function matchText(rule: Rule): string {
  if (rule.src !== undefined) return `src ${rule.src}`
  if (rule.dst !== undefined) return `dst ${rule.dst}`
  if (rule.port !== undefined) return `${rule.direction === 'src' ? 'src' : 'dst'} port ${rule.port}${rule.proto ? `/${rule.proto}` : ' (tcp+udp)'}`
  return `proto ${rule.proto}`
}

/** Packets and bytes each rule matched, summed over every interface the caller sees. */
function useRuleHits(): Record<string, { packets: number; bytes: number }> {
  const snapshot = useStream((s) => s.snapshot)
  return useMemo(() => {
    const hits: Record<string, { packets: number; bytes: number }> = {}
    for (const i of snapshot?.interfaces ?? [])
      for (const [id, n] of Object.entries(i.ruleHits)) {
        const have = hits[id] ?? { packets: 0, bytes: 0 }
        hits[id] = { packets: have.packets + n.packets, bytes: have.bytes + n.bytes }
      }
    return hits
  }, [snapshot])
}

export default function RulesPage() {
  const auth = useAuth()
  const canWrite = auth.can('rules:write')
  const [params, setParams] = useSearchParams()
  const tab: TabKey = params.get('tab') === 'acks' ? 'acks' : 'rules'
  const rules = useRules()
  const nodes = useNodes()
  const save = useSaveRules()
  const hits = useRuleHits()
  const [editing, setEditing] = useState<{ index: number; draft: RuleDraft } | null>(null)
  const [errors, setErrors] = useState<DraftErrors>({})
  const [deleting, setDeleting] = useState<Rule | null>(null)
  const [pageError, setPageError] = useState<unknown>(null)
  const set = rules.data

  const nextId = (set?.rules.reduce((m, r) => Math.max(m, r.id), 0) ?? 0) + 1

  const saveDraft = (draft: RuleDraft) => {
    if (!set || !editing) return
    const rule = ruleFromDraft(draft)
    const list = [...set.rules]
    const index = editing.index < 0 ? list.length : editing.index
    list[index] = rule
    setErrors({})
    save.mutate(
      { default_action: set.default_action, rules: list },
      {
        onSuccess: () => setEditing(null),
        onError: (error) => setErrors(draftErrors(error instanceof ApiError ? error : toApiError(error), index, draft.id, draft.kind)),
      },
    )
  }

  const remove = (rule: Rule) => {
    if (!set) return
    setPageError(null)
    save.mutate({ default_action: set.default_action, rules: set.rules.filter((r) => r.id !== rule.id) }, { onSuccess: () => setDeleting(null), onError: setPageError })
  }

  const setDefault = (action: Action) => {
    if (!set) return
    setPageError(null)
    save.mutate({ default_action: action, rules: set.rules }, { onError: setPageError })
  }

  return (
    <div>
      <PageHeader
        title="Rules"
        description={set ? <>Generation {set.generation}. Dataplanes apply a new set within a tick and acknowledge it.</> : 'Filter rules applied in XDP on every tap and inline dataplane.'}
        actions={
          canWrite && tab === 'rules' && set ? (
            <Button
              icon={<Plus className="w-4 h-4" aria-hidden />}
              onClick={() => {
                setErrors({})
                setEditing({ index: -1, draft: draftFromRule(null, nextId) })
              }}
            >
              Add rule
            </Button>
          ) : undefined
        }
      />
      <Tabs<TabKey>
        idPrefix="rules"
        label="Rules sections"
        active={tab}
        onChange={(k) => setParams(k === 'rules' ? {} : { tab: k }, { replace: true })}
        tabs={[
          { key: 'rules', label: 'Rule set' },
          { key: 'acks', label: 'Acknowledgements' },
        ]}
      />
      {tab === 'rules' && (
        <TabPanel idPrefix="rules" tabKey="rules">
          <ErrorNotice error={rules.error} title="Could not load the rule set" onRetry={() => void rules.refetch()} />
          {pageError ? <div className="mb-4"><ErrorNotice error={pageError} title="The rule set was not changed" /></div> : null}
          {rules.isLoading || !set ? (
            <TableSkeleton label="Loading rules" />
          ) : (
            <>
              <div className="mb-4 flex flex-wrap items-end gap-4">
                {canWrite ? (
                  <SelectField label="Default action (no rule matches)" value={set.default_action} onChange={(e) => setDefault(e.target.value as Action)} className="w-64" disabled={save.isPending}>
                    <option value="allow">allow</option>
                    <option value="deny">deny</option>
                  </SelectField>
                ) : (
                  <p className="text-sm text-amber-300">
                    Default action: <Badge tone={set.default_action === 'deny' ? 'bad' : 'good'}>{set.default_action}</Badge>
                  </p>
                )}
              </div>
              <Card bodyClassName="p-0">
                {set.rules.length === 0 ? (
                  <EmptyState title="No rules yet" action={canWrite ? <Button onClick={() => setEditing({ index: -1, draft: draftFromRule(null, nextId) })}>Add the first rule</Button> : undefined}>
                    Every packet gets the default action ({set.default_action}). {canWrite ? 'Add a deny rule to drop a flood at the driver.' : 'Someone with rules:write can add rules.'}
                  </EmptyState>
                ) : (
                  <Table caption="Current rule set with live hit counters">
                    <thead>
                      <tr>
                        <th scope="col" className={th}>Id</th>
                        <th scope="col" className={th}>Action</th>
                        <th scope="col" className={th}>Match</th>
                        <th scope="col" className={`${th} text-right`}>Hits (live)</th>
                        {canWrite && <th scope="col" className={`${th} text-right`}>Actions</th>}
                      </tr>
                    </thead>
                    <tbody className="divide-y divide-slate-700">
                      {set.rules.map((rule, index) => (
                        <tr key={rule.id} data-testid={`rule-${rule.id}`}>
                          <td className={`${td} tabular-nums`}>{rule.id}</td>
                          <td className={td}>
                            <Badge tone={rule.action === 'deny' ? 'bad' : 'good'}>{rule.action}</Badge>
                          </td>
                          <td className={`${td} font-mono text-xs`}>{matchText(rule)}</td>
                          <td className={`${td} text-right tabular-nums`}>
                            <span data-testid={`rule-hits-${rule.id}`}>{formatCount(hits[String(rule.id)]?.packets ?? 0)}</span>
                            <span className="text-xs text-amber-500"> pkts · {formatBytes(hits[String(rule.id)]?.bytes ?? 0)}</span>
                          </td>
                          {canWrite && (
                            <td className={`${td} text-right`}>
                              <div className="inline-flex gap-1">
                                <Button
                                  variant="ghost"
                                  size="sm"
                                  aria-label={`Edit rule ${rule.id}`}
                                  icon={<Pencil className="w-4 h-4" aria-hidden />}
                                  onClick={() => {
                                    setErrors({})
                                    setEditing({ index, draft: draftFromRule(rule, nextId) })
                                  }}
                                />
                                <Button variant="ghost" size="sm" aria-label={`Delete rule ${rule.id}`} icon={<Trash2 className="w-4 h-4" aria-hidden />} onClick={() => setDeleting(rule)} />
                              </div>
                            </td>
                          )}
                        </tr>
                      ))}
                    </tbody>
                  </Table>
                )}
              </Card>
            </>
          )}
        </TabPanel>
      )}
      {tab === 'acks' && (
        <TabPanel idPrefix="rules" tabKey="acks">
          <ErrorNotice error={nodes.error} title="Could not load nodes" />
          {nodes.isLoading ? (
            <TableSkeleton label="Loading acknowledgements" />
          ) : !nodes.data?.length ? (
            <EmptyState title="No dataplane to acknowledge">Connected dataplanes report the generation they applied here.</EmptyState>
          ) : (
            <Table caption="Rule generation acknowledged per node">
              <thead>
                <tr>
                  <th scope="col" className={th}>Node</th>
                  <th scope="col" className={th}>Connected</th>
                  <th scope="col" className={th}>Generation applied</th>
                  <th scope="col" className={th}>Status</th>
                  <th scope="col" className={th}>Last seen</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-700">
                {nodes.data.map((n) => {
                  const current = set?.generation
                  const status = n.rules_error ? (
                    <Badge tone="bad">error: {n.rules_error}</Badge>
                  ) : current === undefined || n.rules_generation_applied >= current ? (
                    <Badge tone="good">up to date</Badge>
                  ) : (
                    <Badge tone="warn">pending (has {n.rules_generation_applied})</Badge>
                  )
                  return (
                    <tr key={n.node_id}>
                      <th scope="row" className={`${td} text-left font-semibold`}>{n.node_id}</th>
                      <td className={td}>{n.connected ? 'yes' : 'no'}</td>
                      <td className={`${td} tabular-nums`}>{n.rules_generation_applied}</td>
                      <td className={td}>{status}</td>
                      <td className={td}>
                        <Time value={n.last_seen} />
                      </td>
                    </tr>
                  )
                })}
              </tbody>
            </Table>
          )}
        </TabPanel>
      )}
      {editing && (
        <RuleEditor
          open
          title={editing.index < 0 ? 'Add rule' : `Edit rule ${editing.draft.id}`}
          initial={editing.draft}
          errors={errors}
          saving={save.isPending}
          onSave={saveDraft}
          onClose={() => setEditing(null)}
        />
      )}
      <Drawer open={deleting !== null} title="Delete rule" side="center" onClose={() => setDeleting(null)}>
        {deleting && (
          <div className="space-y-4">
            <p className="text-amber-200">
              Delete rule {deleting.id} ({matchText(deleting)})? Dataplanes stop applying it within a tick.
            </p>
            <Notice tone="warning">Traffic it {deleting.action === 'deny' ? 'dropped will flow again' : 'allowed gets the default action'}.</Notice>
            <div className="flex justify-end gap-2">
              <Button variant="ghost" onClick={() => setDeleting(null)}>
                Cancel
              </Button>
              <Button variant="danger" disabled={save.isPending} onClick={() => remove(deleting)}>
                Delete
              </Button>
            </div>
          </div>
        )}
      </Drawer>
    </div>
  )
}
