/** Teams, their members (with a team role) and their node grants. */
import { useState, type FormEvent } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Plus, Trash2, X } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { Drawer } from '@/components/ui/Drawer'
import { EmptyState, ErrorNotice, TableSkeleton } from '@/components/ui/Feedback'
import { SelectField, TextField } from '@/components/ui/Field'
import { PageHeader } from '@/components/ui/Misc'
import { fieldErrorMap } from '@/lib/api-client'
import { useAuth } from '@/lib/auth'
import { getPage, rolesQueryOptions, type User } from '@/lib/resources/identity'
import { useTeamMutations, useTeamResources, useTeams, type Team } from '../api/teams'

function TeamDetail({ team, canWrite }: { team: Team; canWrite: boolean }) {
  const auth = useAuth()
  const m = useTeamMutations()
  const resources = useTeamResources(team.id)
  const teamRoles = useQuery(rolesQueryOptions('team'))
  const users = useQuery({ queryKey: ['users', 'picker'], queryFn: () => getPage<User>('/users', { limit: 200 }), enabled: auth.can('users:read') })
  const [user, setUser] = useState('')
  const [role, setRole] = useState('team_viewer')
  const [node, setNode] = useState('')
  const error = m.addMember.error ?? m.removeMember.error ?? m.grant.error ?? m.revoke.error
  const addMember = (e: FormEvent) => {
    e.preventDefault()
    if (user) m.addMember.mutate({ team: team.id, user: Number(user), role }, { onSuccess: () => setUser('') })
  }
  const grant = (e: FormEvent) => {
    e.preventDefault()
    if (node.trim()) m.grant.mutate({ team: team.id, node: node.trim() }, { onSuccess: () => setNode('') })
  }
  return (
    <div className="space-y-4">
      <ErrorNotice error={error} title="Team not changed" />
      <Card title={`Members of ${team.name}`}>
        {team.members.length === 0 ? (
          <p className="text-sm text-amber-500">No members yet.</p>
        ) : (
          <ul className="divide-y divide-slate-700">
            {team.members.map((mem) => (
              <li key={mem.user_id} className="flex items-center justify-between py-2 text-sm">
                <span>
                  <span className="text-amber-100">{mem.email}</span> <span className="text-amber-500">({mem.role})</span>
                </span>
                {canWrite && (
                  <Button variant="ghost" size="sm" aria-label={`Remove ${mem.email} from ${team.name}`} icon={<X className="w-4 h-4" aria-hidden />} onClick={() => m.removeMember.mutate({ team: team.id, user: mem.user_id })} />
                )}
              </li>
            ))}
          </ul>
        )}
        {canWrite && (
          <form onSubmit={addMember} className="mt-3 flex flex-wrap items-end gap-3">
            {users.data ? (
              <SelectField label="User" value={user} onChange={(e) => setUser(e.target.value)} className="w-64">
                <option value="">Choose a user…</option>
                {users.data.items.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.email}
                  </option>
                ))}
              </SelectField>
            ) : (
              <TextField label="User id" inputMode="numeric" value={user} onChange={(e) => setUser(e.target.value)} className="w-32" />
            )}
            <SelectField label="Team role" value={role} onChange={(e) => setRole(e.target.value)} className="w-48">
              {(teamRoles.data ?? [{ name: 'team_viewer' }]).map((r) => (
                <option key={r.name} value={r.name}>
                  {r.name}
                </option>
              ))}
            </SelectField>
            <Button type="submit" variant="secondary" disabled={!user}>
              Add member
            </Button>
          </form>
        )}
      </Card>
      <Card title="Node grants (members see these nodes)">
        {resources.isLoading ? (
          <TableSkeleton rows={2} label="Loading grants" />
        ) : !resources.data?.length ? (
          <p className="text-sm text-amber-500">No nodes granted: members see no dataplane through this team.</p>
        ) : (
          <ul className="divide-y divide-slate-700">
            {resources.data.map((r) => (
              <li key={r.id} className="flex items-center justify-between py-2 text-sm">
                <span className="font-mono text-amber-100">
                  {r.resource_type}/{r.resource_id}
                </span>
                {canWrite && <Button variant="ghost" size="sm" aria-label={`Revoke ${r.resource_id}`} icon={<X className="w-4 h-4" aria-hidden />} onClick={() => m.revoke.mutate({ team: team.id, resource: r.id })} />}
              </li>
            ))}
          </ul>
        )}
        {canWrite && (
          <form onSubmit={grant} className="mt-3 flex flex-wrap items-end gap-3">
            <TextField label="Node id" value={node} onChange={(e) => setNode(e.target.value)} className="w-64" error={fieldErrorMap(m.grant.error).resource_id} />
            <Button type="submit" variant="secondary" disabled={!node.trim()}>
              Grant node
            </Button>
          </form>
        )}
      </Card>
    </div>
  )
}

export default function TeamsPage() {
  const auth = useAuth()
  const canWrite = auth.can('teams:write')
  const canAdmin = auth.can('teams:admin')
  const teams = useTeams()
  const m = useTeamMutations()
  const [selected, setSelected] = useState<number | null>(null)
  const [creating, setCreating] = useState(false)
  const [name, setName] = useState('')
  const [description, setDescription] = useState('')
  const team = teams.data?.find((t) => t.id === selected) ?? teams.data?.[0] ?? null
  const errors = fieldErrorMap(m.create.error)

  return (
    <div>
      <PageHeader
        title="Teams"
        description="A team's members get their team role's scopes on the nodes the team holds."
        actions={canWrite && <Button variant="admin" icon={<Plus className="w-4 h-4" aria-hidden />} onClick={() => setCreating(true)}>Create team</Button>}
      />
      <ErrorNotice error={teams.error ?? m.remove.error} title="Teams" />
      {teams.isLoading ? (
        <TableSkeleton label="Loading teams" />
      ) : !teams.data?.length ? (
        <Card>
          <EmptyState title="No teams yet">{canWrite ? 'Create a team, add members and grant it the nodes they look after.' : 'An administrator can create teams.'}</EmptyState>
        </Card>
      ) : (
        <div className="grid grid-cols-1 gap-6 lg:grid-cols-3">
          <Card title="Teams" bodyClassName="p-2">
            <ul className="space-y-1">
              {teams.data.map((t) => (
                <li key={t.id} className="flex items-center gap-1">
                  <button
                    type="button"
                    onClick={() => setSelected(t.id)}
                    aria-current={team?.id === t.id ? 'true' : undefined}
                    className={`flex-1 rounded-lg px-3 py-2 text-left text-sm focus-visible:ring-2 focus-visible:ring-primary-500 ${team?.id === t.id ? 'bg-primary-700 text-white' : 'text-amber-300 hover:bg-slate-700'}`}
                  >
                    {t.name} <span className="text-xs opacity-80">({t.members.length})</span>
                  </button>
                  {canAdmin && <Button variant="ghost" size="sm" aria-label={`Delete team ${t.name}`} icon={<Trash2 className="w-4 h-4" aria-hidden />} onClick={() => m.remove.mutate(t.id)} />}
                </li>
              ))}
            </ul>
          </Card>
          <div className="lg:col-span-2">{team && <TeamDetail team={team} canWrite={canWrite} />}</div>
        </div>
      )}
      <Drawer open={creating} title="Create team" side="center" onClose={() => setCreating(false)}>
        <form
          className="space-y-4"
          onSubmit={(e) => {
            e.preventDefault()
            m.create.mutate({ name, description: description || undefined }, { onSuccess: (t) => { setCreating(false); setName(''); setDescription(''); setSelected(t.id) } })
          }}
        >
          {m.create.error && !Object.keys(errors).length ? <ErrorNotice error={m.create.error} title="Team not created" /> : null}
          <TextField label="Name" required value={name} onChange={(e) => setName(e.target.value)} error={errors.name} />
          <TextField label="Description" value={description} onChange={(e) => setDescription(e.target.value)} error={errors.description} />
          <div className="flex justify-end gap-2">
            <Button variant="ghost" onClick={() => setCreating(false)}>
              Cancel
            </Button>
            <Button type="submit" disabled={m.create.isPending}>
              Create
            </Button>
          </div>
        </form>
      </Drawer>
    </div>
  )
}
