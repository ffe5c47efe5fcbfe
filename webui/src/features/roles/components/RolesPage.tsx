/** Roles: built-in and custom; custom roles are made with a scope picker. */
import { useState, type FormEvent } from 'react'
import { Pencil, Plus, Trash2 } from 'lucide-react'
import { ScopePicker } from '@/components/ScopePicker'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { Drawer } from '@/components/ui/Drawer'
import { ErrorNotice, TableSkeleton } from '@/components/ui/Feedback'
import { SelectField, TextField } from '@/components/ui/Field'
import { Badge, PageHeader, Table, td, th } from '@/components/ui/Misc'
import { fieldErrorMap } from '@/lib/api-client'
import { useAuth } from '@/lib/auth'
import type { Role } from '@/lib/resources/identity'
import { useCreateRole, useDeleteRole, useRoles, useUpdateRole } from '../api/roles'

function RoleForm({ role, open, onClose }: { role: Role | null; open: boolean; onClose: () => void }) {
  const create = useCreateRole()
  const update = useUpdateRole()
  const [name, setName] = useState(role?.name ?? '')
  const [description, setDescription] = useState(role?.description ?? '')
  const [level, setLevel] = useState<Role['level']>(role?.level ?? 'global')
  const [scopes, setScopes] = useState<string[]>(role?.scopes ?? [])
  const mutation = role ? update : create
  const errors = fieldErrorMap(mutation.error)
  const submit = (e: FormEvent) => {
    e.preventDefault()
    if (role) update.mutate({ id: role.id, description, scopes }, { onSuccess: onClose })
    else create.mutate({ name, description: description || undefined, level, scopes }, { onSuccess: onClose })
  }
  return (
    <Drawer open={open} title={role ? `Edit role ${role.name}` : 'Create custom role'} onClose={onClose} side="center" wide>
      <form onSubmit={submit} className="space-y-4">
        {mutation.error && !Object.keys(errors).length ? <ErrorNotice error={mutation.error} title="The role was not saved" /> : null}
        <div className="grid grid-cols-2 gap-4">
          <TextField label="Name" required disabled={role !== null} value={name} onChange={(e) => setName(e.target.value)} error={errors.name} />
          <SelectField label="Level" value={level} disabled={role !== null} onChange={(e) => setLevel(e.target.value as Role['level'])} error={errors.level}>
            <option value="global">global (every resource)</option>
            <option value="team">team (a team role)</option>
            <option value="resource">resource (a node grant)</option>
          </SelectField>
        </div>
        <TextField label="Description" value={description} onChange={(e) => setDescription(e.target.value)} error={errors.description} />
        <ScopePicker legend="Scopes" value={scopes} onChange={setScopes} error={errors.scopes} />
        <div className="flex justify-end gap-2">
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={mutation.isPending}>
            Save role
          </Button>
        </div>
      </form>
    </Drawer>
  )
}

export default function RolesPage() {
  const auth = useAuth()
  const canWrite = auth.can('roles:write')
  const canAdmin = auth.can('roles:admin')
  const roles = useRoles()
  const remove = useDeleteRole()
  const [form, setForm] = useState<{ role: Role | null } | null>(null)

  return (
    <div>
      <PageHeader
        title="Roles"
        description="Built-in roles are fixed; custom roles bundle the scopes you pick."
        actions={canWrite && <Button variant="admin" icon={<Plus className="w-4 h-4" aria-hidden />} onClick={() => setForm({ role: null })}>Create role</Button>}
      />
      <ErrorNotice error={roles.error ?? remove.error} title="Roles" />
      <Card bodyClassName="p-0">
        {roles.isLoading ? (
          <TableSkeleton label="Loading roles" />
        ) : (
          <Table caption="Roles">
            <thead>
              <tr>
                <th scope="col" className={th}>Name</th>
                <th scope="col" className={th}>Level</th>
                <th scope="col" className={th}>Scopes</th>
                {canWrite && <th scope="col" className={`${th} text-right`}>Actions</th>}
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-700">
              {(roles.data ?? []).map((r) => (
                <tr key={r.id}>
                  <td className={td}>
                    <span className="text-amber-100">{r.name}</span> {r.builtin && <Badge>built-in</Badge>}
                    {r.description && <div className="text-xs text-amber-500 whitespace-normal">{r.description}</div>}
                  </td>
                  <td className={td}>{r.level}</td>
                  <td className={`${td} max-w-xl whitespace-normal text-xs`}>{r.scopes.join(', ')}</td>
                  {canWrite && (
                    <td className={`${td} text-right`}>
                      {!r.builtin && (
                        <div className="inline-flex gap-1">
                          <Button variant="ghost" size="sm" aria-label={`Edit role ${r.name}`} icon={<Pencil className="w-4 h-4" aria-hidden />} onClick={() => setForm({ role: r })} />
                          {canAdmin && <Button variant="ghost" size="sm" aria-label={`Delete role ${r.name}`} icon={<Trash2 className="w-4 h-4" aria-hidden />} onClick={() => remove.mutate(r.id)} />}
                        </div>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </Table>
        )}
      </Card>
      {form && <RoleForm key={form.role?.id ?? 'new'} role={form.role} open onClose={() => setForm(null)} />}
    </div>
  )
}
