/** Users: list and filter; create, (de)activate, change roles, delete — each control only
 *  for the scope that allows it (users:write, users:admin). */
import { useState, type FormEvent } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Pencil, Plus, Trash2, UserCheck, UserX } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { Drawer } from '@/components/ui/Drawer'
import { EmptyState, ErrorNotice, TableSkeleton } from '@/components/ui/Feedback'
import { SelectField, TextField } from '@/components/ui/Field'
import { Badge, PageHeader, Table, td, th, Time } from '@/components/ui/Misc'
import { Pager } from '@/components/ui/Pager'
import { fieldErrorMap } from '@/lib/api-client'
import { useAuth } from '@/lib/auth'
import { rolesQueryOptions, type User } from '@/lib/resources/identity'
import { PAGE, useCreateUser, useDeleteUser, useUpdateUser, useUsers, type UserFilters } from '../api/users'

function RoleChecks({ value, onChange }: { value: string[]; onChange: (v: string[]) => void }) {
  const roles = useQuery(rolesQueryOptions('global'))
  return (
    <fieldset className="rounded-lg border border-slate-600 p-3">
      <legend className="px-1 text-sm font-medium text-amber-300">Roles</legend>
      <div className="flex flex-wrap gap-4">
        {(roles.data ?? []).map((r) => (
          <label key={r.name} className="inline-flex items-center gap-2 text-sm text-amber-200">
            <input type="checkbox" className="h-4 w-4 accent-sky-500" checked={value.includes(r.name)} onChange={(e) => onChange(e.target.checked ? [...value, r.name] : value.filter((x) => x !== r.name))} />
            {r.name}
          </label>
        ))}
      </div>
    </fieldset>
  )
}

function CreateUser({ open, onClose }: { open: boolean; onClose: () => void }) {
  const create = useCreateUser()
  const [email, setEmail] = useState('')
  const [name, setName] = useState('')
  const [password, setPassword] = useState('')
  const [roles, setRoles] = useState<string[]>(['viewer'])
  const errors = fieldErrorMap(create.error)
  const submit = (e: FormEvent) => {
    e.preventDefault()
    create.mutate(
      { email, password, roles, display_name: name || undefined },
      {
        onSuccess: () => {
          setEmail('')
          setName('')
          setPassword('')
          setRoles(['viewer'])
          onClose()
        },
      },
    )
  }
  return (
    <Drawer open={open} title="Create user" onClose={onClose} side="center">
      <form onSubmit={submit} className="space-y-4">
        {create.error && !Object.keys(errors).length ? <ErrorNotice error={create.error} title="The user was not created" /> : null}
        <TextField label="Email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} error={errors.email} autoComplete="off" />
        <TextField label="Display name" value={name} onChange={(e) => setName(e.target.value)} error={errors.display_name} />
        <TextField label="Initial password" type="password" required value={password} onChange={(e) => setPassword(e.target.value)} error={errors.password} autoComplete="new-password" hint="They will be asked to change it." />
        <RoleChecks value={roles} onChange={setRoles} />
        {errors.roles && <p className="text-xs text-red-300">{errors.roles}</p>}
        <div className="flex justify-end gap-2">
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={create.isPending}>
            Create user
          </Button>
        </div>
      </form>
    </Drawer>
  )
}

function EditRoles({ user, onClose }: { user: User | null; onClose: () => void }) {
  const update = useUpdateUser()
  const [roles, setRoles] = useState<string[]>(user?.roles ?? [])
  const [seen, setSeen] = useState<User | null>(null)
  if (user !== seen) {
    setSeen(user)
    setRoles(user?.roles ?? [])
    update.reset()
  }
  return (
    <Drawer open={user !== null} title={`Roles of ${user?.email ?? ''}`} onClose={onClose} side="center">
      <div className="space-y-4">
        <ErrorNotice error={update.error} title="Roles not changed" />
        <RoleChecks value={roles} onChange={setRoles} />
        <div className="flex justify-end gap-2">
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button disabled={update.isPending || !user} onClick={() => user && update.mutate({ id: user.id, roles }, { onSuccess: onClose })}>
            Save roles
          </Button>
        </div>
      </div>
    </Drawer>
  )
}

export default function UsersPage() {
  const auth = useAuth()
  const canWrite = auth.can('users:write')
  const canAdmin = auth.can('users:admin')
  const [filters, setFilters] = useState<UserFilters>({ offset: 0 })
  const [emailInput, setEmailInput] = useState('')
  const users = useUsers(filters)
  const update = useUpdateUser()
  const remove = useDeleteUser()
  const [creating, setCreating] = useState(false)
  const [editing, setEditing] = useState<User | null>(null)
  const [deleting, setDeleting] = useState<User | null>(null)

  return (
    <div>
      <PageHeader
        title="Users"
        description="People who sign in to Floe, their roles and status."
        actions={canWrite && <Button variant="admin" icon={<Plus className="w-4 h-4" aria-hidden />} onClick={() => setCreating(true)}>Create user</Button>}
      />
      <form
        className="mb-4 flex flex-wrap items-end gap-3"
        onSubmit={(e) => {
          e.preventDefault()
          setFilters((f) => ({ ...f, email: emailInput, offset: 0 }))
        }}
      >
        <TextField label="Email contains" value={emailInput} onChange={(e) => setEmailInput(e.target.value)} className="w-64" />
        <SelectField label="Status" value={filters.active ?? ''} onChange={(e) => setFilters((f) => ({ ...f, active: e.target.value as UserFilters['active'], offset: 0 }))} className="w-40">
          <option value="">any</option>
          <option value="true">active</option>
          <option value="false">deactivated</option>
        </SelectField>
        <Button type="submit" variant="secondary">
          Search
        </Button>
      </form>
      <ErrorNotice error={users.error ?? update.error ?? remove.error} title="Users" />
      <Card bodyClassName="p-0">
        {users.isLoading ? (
          <TableSkeleton label="Loading users" />
        ) : !users.data?.items.length ? (
          <EmptyState title="No users match">Clear the filters{canWrite ? ', or create a user' : ''}.</EmptyState>
        ) : (
          <Table caption="Users">
            <thead>
              <tr>
                <th scope="col" className={th}>Email</th>
                <th scope="col" className={th}>Roles</th>
                <th scope="col" className={th}>Status</th>
                <th scope="col" className={th}>2FA</th>
                <th scope="col" className={th}>Last login</th>
                {canWrite && <th scope="col" className={`${th} text-right`}>Actions</th>}
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-700">
              {users.data.items.map((u) => (
                <tr key={u.id} data-testid={`user-${u.email}`}>
                  <td className={td}>
                    <div className="text-amber-100">{u.email}</div>
                    {u.display_name && <div className="text-xs text-amber-500">{u.display_name}</div>}
                  </td>
                  <td className={td}>{u.roles.join(', ') || <span className="text-amber-500">none (grants only)</span>}</td>
                  <td className={td}>
                    {u.active ? <Badge tone="good">active</Badge> : <Badge tone="bad">deactivated</Badge>} {u.locked_until && <Badge tone="warn">locked</Badge>}
                  </td>
                  <td className={td}>{u.totp_enabled ? 'on' : 'off'}</td>
                  <td className={td}>
                    <Time value={u.current_login_at} />
                  </td>
                  {canWrite && (
                    <td className={`${td} text-right`}>
                      <div className="inline-flex gap-1">
                        <Button variant="ghost" size="sm" aria-label={`Edit roles of ${u.email}`} icon={<Pencil className="w-4 h-4" aria-hidden />} onClick={() => setEditing(u)} />
                        <Button
                          variant="ghost"
                          size="sm"
                          aria-label={u.active ? `Deactivate ${u.email}` : `Activate ${u.email}`}
                          icon={u.active ? <UserX className="w-4 h-4" aria-hidden /> : <UserCheck className="w-4 h-4" aria-hidden />}
                          disabled={u.id === auth.me?.user_id}
                          onClick={() => update.mutate({ id: u.id, active: !u.active })}
                        />
                        {canAdmin && (
                          <Button variant="ghost" size="sm" aria-label={`Delete ${u.email}`} icon={<Trash2 className="w-4 h-4" aria-hidden />} disabled={u.id === auth.me?.user_id} onClick={() => setDeleting(u)} />
                        )}
                      </div>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </Table>
        )}
        {users.data && <Pager offset={filters.offset} limit={PAGE} total={users.data.total} onChange={(offset) => setFilters((f) => ({ ...f, offset }))} />}
      </Card>
      <CreateUser open={creating} onClose={() => setCreating(false)} />
      <EditRoles user={editing} onClose={() => setEditing(null)} />
      <Drawer open={deleting !== null} title="Delete user" side="center" onClose={() => setDeleting(null)}>
        <p className="text-amber-200">Delete {deleting?.email}? Their API keys are revoked. This cannot be undone.</p>
        <div className="mt-4 flex justify-end gap-2">
          <Button variant="ghost" onClick={() => setDeleting(null)}>
            Cancel
          </Button>
          <Button variant="danger" disabled={remove.isPending} onClick={() => deleting && remove.mutate(deleting.id, { onSuccess: () => setDeleting(null) })}>
            Delete
          </Button>
        </div>
      </Drawer>
    </div>
  )
}
