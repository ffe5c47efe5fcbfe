/** API clients: create with scopes (a dataplane key names its node), the key shown once,
 *  rotate (a new key, once), revoke. */
import { useState, type FormEvent } from 'react'
import { KeyRound, Plus, RotateCw, Trash2 } from 'lucide-react'
import { ScopePicker } from '@/components/ScopePicker'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { Drawer } from '@/components/ui/Drawer'
import { EmptyState, ErrorNotice, TableSkeleton } from '@/components/ui/Feedback'
import { Checkbox, TextField } from '@/components/ui/Field'
import { Badge, PageHeader, Table, td, th, Time } from '@/components/ui/Misc'
import { Pager } from '@/components/ui/Pager'
import { ApiError, fieldErrorMap } from '@/lib/api-client'
import { useAuth } from '@/lib/auth'
import { useClients, useCreateClient, useRevokeClient, useRotateClient, type ApiClient } from '../api/clients'
import { KeyOnce } from './KeyOnce'

function CreateClient({ open, onClose, onIssued }: { open: boolean; onClose: () => void; onIssued: (k: { name: string; api_key: string }) => void }) {
  const create = useCreateClient()
  const [name, setName] = useState('')
  const [scopes, setScopes] = useState<string[]>([])
  const [expires, setExpires] = useState('')
  const [nodeId, setNodeId] = useState('')
  const errors = fieldErrorMap(create.error)
  const needsNode = scopes.includes('dataplane:write') || scopes.includes('dataplane:admin')
  const codeError = create.error instanceof ApiError ? create.error : null
  if (codeError?.code === 'node_id_required' || codeError?.code === 'node_id_unused') errors.node_id ??= codeError.message
  const submit = (e: FormEvent) => {
    e.preventDefault()
    create.mutate(
      { name, scopes, expires_at: expires ? new Date(expires).toISOString() : undefined, node_id: needsNode ? nodeId || undefined : undefined },
      {
        onSuccess: (issued) => {
          onIssued({ name: issued.name, api_key: issued.api_key })
          setName('')
          setScopes([])
          setExpires('')
          setNodeId('')
          create.reset()
          onClose()
        },
      },
    )
  }
  return (
    <Drawer open={open} title="Create API client" side="center" wide onClose={onClose}>
      <form onSubmit={submit} className="space-y-4">
        {create.error && !Object.keys(errors).length ? <ErrorNotice error={create.error} title="The key was not created" /> : null}
        <TextField label="Name" required value={name} onChange={(e) => setName(e.target.value)} error={errors.name} hint="What uses it, e.g. “siem-collector”." />
        <ScopePicker legend="Scopes (only those you hold)" value={scopes} onChange={setScopes} error={errors.scopes} />
        {needsNode && (
          <TextField label="Node id the dataplane speaks for" required value={nodeId} onChange={(e) => setNodeId(e.target.value)} error={errors.node_id} hint="A node id, or a pattern with * (edge-*); * alone means every node." />
        )}
        <TextField label="Expires (optional)" type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} error={errors.expires_at} />
        <div className="flex justify-end gap-2">
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={create.isPending || scopes.length === 0} icon={<KeyRound className="w-4 h-4" aria-hidden />}>
            Create key
          </Button>
        </div>
      </form>
    </Drawer>
  )
}

export default function ClientsPage() {
  const auth = useAuth()
  const canWrite = auth.can('clients:write')
  const [includeRevoked, setIncludeRevoked] = useState(false)
  const [offset, setOffset] = useState(0)
  const clients = useClients(includeRevoked, offset)
  const rotate = useRotateClient()
  const revoke = useRevokeClient()
  const [creating, setCreating] = useState(false)
  const [issued, setIssued] = useState<{ name: string; api_key: string } | null>(null)
  const [revoking, setRevoking] = useState<ApiClient | null>(null)

  return (
    <div>
      <PageHeader
        title="API clients"
        description={auth.can('clients:admin') ? 'Every API key. A key is shown once, when it is created or rotated.' : 'Your API keys. A key is shown once, when it is created or rotated.'}
        actions={canWrite && <Button variant="admin" icon={<Plus className="w-4 h-4" aria-hidden />} onClick={() => setCreating(true)}>Create API client</Button>}
      />
      <div className="mb-4">
        <Checkbox label="Show revoked keys" checked={includeRevoked} onChange={(e) => { setIncludeRevoked(e.target.checked); setOffset(0) }} />
      </div>
      <ErrorNotice error={clients.error ?? rotate.error ?? revoke.error} title="API clients" />
      <Card bodyClassName="p-0">
        {clients.isLoading ? (
          <TableSkeleton label="Loading API clients" />
        ) : !clients.data?.items.length ? (
          <EmptyState title="No API keys">{canWrite ? 'Create one for a script, a collector or a dataplane on another host.' : 'Ask an administrator for a key.'}</EmptyState>
        ) : (
          <Table caption="API clients">
            <thead>
              <tr>
                <th scope="col" className={th}>Name</th>
                <th scope="col" className={th}>Prefix</th>
                <th scope="col" className={th}>Scopes</th>
                <th scope="col" className={th}>Node</th>
                <th scope="col" className={th}>Last used</th>
                <th scope="col" className={th}>Expires</th>
                {canWrite && <th scope="col" className={`${th} text-right`}>Actions</th>}
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-700">
              {clients.data.items.map((c) => (
                <tr key={c.id} data-testid={`client-${c.name}`}>
                  <td className={td}>
                    <span className="text-amber-100">{c.name}</span> {c.revoked_at && <Badge tone="bad">revoked</Badge>}
                  </td>
                  <td className={`${td} font-mono text-xs`}>{c.prefix}…</td>
                  <td className={`${td} max-w-xs whitespace-normal text-xs`}>{c.scopes.join(', ')}</td>
                  <td className={td}>{c.node_id ?? '—'}</td>
                  <td className={td}>
                    <Time value={c.last_used_at} />
                  </td>
                  <td className={td}>{c.expires_at ? <Time value={c.expires_at} /> : 'never'}</td>
                  {canWrite && (
                    <td className={`${td} text-right`}>
                      {!c.revoked_at && (
                        <div className="inline-flex gap-1">
                          <Button
                            variant="ghost"
                            size="sm"
                            aria-label={`Rotate ${c.name}`}
                            icon={<RotateCw className="w-4 h-4" aria-hidden />}
                            onClick={() => rotate.mutate(c.id, { onSuccess: (k) => setIssued({ name: k.name, api_key: k.api_key }) })}
                          />
                          <Button variant="ghost" size="sm" aria-label={`Revoke ${c.name}`} icon={<Trash2 className="w-4 h-4" aria-hidden />} onClick={() => setRevoking(c)} />
                        </div>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </Table>
        )}
        {clients.data && <Pager offset={offset} limit={50} total={clients.data.total} onChange={setOffset} />}
      </Card>
      <CreateClient open={creating} onClose={() => setCreating(false)} onIssued={setIssued} />
      <KeyOnce issued={issued} onClose={() => setIssued(null)} />
      <Drawer open={revoking !== null} title="Revoke API key" side="center" onClose={() => setRevoking(null)}>
        <p className="text-amber-200">Revoke “{revoking?.name}”? Anything using it stops working at once.</p>
        <div className="mt-4 flex justify-end gap-2">
          <Button variant="ghost" onClick={() => setRevoking(null)}>
            Cancel
          </Button>
          <Button variant="danger" disabled={revoke.isPending} onClick={() => revoking && revoke.mutate(revoking.id, { onSuccess: () => setRevoking(null) })}>
            Revoke
          </Button>
        </div>
      </Drawer>
    </div>
  )
}
