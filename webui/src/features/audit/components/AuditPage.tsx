import { useState, type FormEvent } from 'react'
import { Card } from '@/components/ui/Card'
import { EmptyState, ErrorNotice, TableSkeleton } from '@/components/ui/Feedback'
import { TextField } from '@/components/ui/Field'
import { Badge, PageHeader, Table, td, th, Time } from '@/components/ui/Misc'
import { Pager } from '@/components/ui/Pager'
import { Button } from '@/components/ui/Button'
import { fieldErrorMap } from '@/lib/api-client'
import { formatAbsolute } from '@/lib/format'
import { AUDIT_PAGE, useAudit, type AuditFilters } from '../api/audit'

export default function AuditPage() {
  const [filters, setFilters] = useState<AuditFilters>({ offset: 0 })
  const [draft, setDraft] = useState({ action: '', actor_user_id: '', target: '', since: '' })
  const audit = useAudit(filters)
  const errors = fieldErrorMap(audit.error)
  const apply = (e: FormEvent) => {
    e.preventDefault()
    setFilters({ offset: 0, action: draft.action || undefined, actor_user_id: draft.actor_user_id || undefined, target: draft.target || undefined, since: draft.since || undefined })
  }
  return (
    <div>
      <PageHeader title="Audit log" description="Who changed users, roles, grants, keys and the rule set; logins and failures. Newest first." />
      <form onSubmit={apply} className="mb-4 flex flex-wrap items-end gap-3" aria-label="Audit filters">
        <TextField label="Action" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })} placeholder="login, rules_replace…" error={errors.action} className="w-48" />
        <TextField label="Actor user id" inputMode="numeric" value={draft.actor_user_id} onChange={(e) => setDraft({ ...draft, actor_user_id: e.target.value })} error={errors.actor_user_id} className="w-36" />
        <TextField label="Target" value={draft.target} onChange={(e) => setDraft({ ...draft, target: e.target.value })} placeholder="user:3" error={errors.target} className="w-40" />
        <TextField label="Since" type="datetime-local" value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} error={errors.since} className="w-56" />
        <Button type="submit" variant="secondary">
          Apply filters
        </Button>
      </form>
      {audit.error && !Object.keys(errors).length ? <ErrorNotice error={audit.error} title="Could not load the audit log" /> : null}
      <Card bodyClassName="p-0">
        {audit.isLoading ? (
          <TableSkeleton label="Loading the audit log" />
        ) : !audit.data?.items.length ? (
          <EmptyState title="No entries match">Widen the filters: clear the action or move “since” back.</EmptyState>
        ) : (
          <Table caption="Audit log entries">
            <thead>
              <tr>
                <th scope="col" className={th}>When</th>
                <th scope="col" className={th}>Action</th>
                <th scope="col" className={th}>Result</th>
                <th scope="col" className={th}>Actor</th>
                <th scope="col" className={th}>Target</th>
                <th scope="col" className={th}>IP</th>
                <th scope="col" className={th}>Details</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-700">
              {audit.data.items.map((a) => (
                <tr key={a.id}>
                  <td className={td}>
                    <Time value={a.at} />
                    <div className="text-xs text-amber-500">{formatAbsolute(a.at)}</div>
                  </td>
                  <td className={`${td} font-mono text-xs`}>{a.action}</td>
                  <td className={td}>{a.success ? <Badge tone="good">ok</Badge> : <Badge tone="bad">failed</Badge>}</td>
                  <td className={td}>{a.actor_user_id !== null ? `user:${a.actor_user_id}` : a.actor_client_id !== null ? `client:${a.actor_client_id}` : 'system'}</td>
                  <td className={td}>{a.target ?? '—'}</td>
                  <td className={td}>{a.ip ?? '—'}</td>
                  <td className={`${td} max-w-md truncate font-mono text-xs`} title={a.details ? JSON.stringify(a.details) : ''}>
                    {a.details ? JSON.stringify(a.details) : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </Table>
        )}
        {audit.data && <Pager offset={filters.offset} limit={AUDIT_PAGE} total={audit.data.total} onChange={(offset) => setFilters((f) => ({ ...f, offset }))} />}
      </Card>
    </div>
  )
}
