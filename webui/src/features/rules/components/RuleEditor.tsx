/** Add or edit one rule; the API's validation errors land on the field they name. */
import { useEffect, useState, type FormEvent } from 'react'
import { Button } from '@/components/ui/Button'
import { Drawer } from '@/components/ui/Drawer'
import { SelectField, TextField } from '@/components/ui/Field'
import type { Action, Rule } from '@/lib/resources/rules'

export type MatchKind = 'src' | 'dst' | 'port' | 'proto'

export interface RuleDraft {
  id: string
  action: Action
  kind: MatchKind
  value: string
  portProto: '' | 'tcp' | 'udp'
  direction: 'dst' | 'src'
}

export type DraftErrors = Partial<Record<keyof RuleDraft | 'form', string>>

export function draftFromRule(rule: Rule | null, nextId: number): RuleDraft {
  if (!rule) return { id: String(nextId), action: 'deny', kind: 'src', value: '', portProto: '', direction: 'dst' }
  const kind: MatchKind = rule.src !== undefined ? 'src' : rule.dst !== undefined ? 'dst' : rule.port !== undefined ? 'port' : 'proto'
  const value = kind === 'src' ? rule.src : kind === 'dst' ? rule.dst : kind === 'port' ? String(rule.port) : String(rule.proto ?? '')
  return {
    id: String(rule.id),
    action: rule.action,
    kind,
    value: value ?? '',
    portProto: kind === 'port' && (rule.proto === 'tcp' || rule.proto === 'udp') ? rule.proto : '',
    direction: rule.direction === 'src' ? 'src' : 'dst',
  }
}

/** A draft as the API's rule JSON (numbers where the API wants numbers, as typed otherwise:
 *  the server is the one that validates). */
export function ruleFromDraft(d: RuleDraft): Rule {
  const id = Number(d.id)
  const rule: Rule = { id: Number.isFinite(id) ? id : (d.id as unknown as number), action: d.action }
  if (d.kind === 'src') rule.src = d.value.trim()
  else if (d.kind === 'dst') rule.dst = d.value.trim()
  else if (d.kind === 'proto') rule.proto = d.value.trim().toLowerCase()
  else {
    const port = Number(d.value)
    rule.port = d.value.trim() !== '' && Number.isInteger(port) ? port : (d.value as unknown as number)
    if (d.portProto) rule.proto = d.portProto
    rule.direction = d.direction
  }
  return rule
}

const VALUE_LABEL: Record<MatchKind, string> = {
  src: 'Source CIDR',
  dst: 'Destination CIDR',
  port: 'Port',
  proto: 'Protocol',
}
const VALUE_HINT: Record<MatchKind, string> = {
  src: 'e.g. 10.0.0.0/8 or 2001:db8::/32',
  dst: 'e.g. 192.0.2.0/24',
  port: '0–65535',
  proto: 'icmp, tcp, udp, gre, esp, icmpv6, sctp or 0–255',
}

export function RuleEditor({ open, initial, title, errors, saving, onSave, onClose }: {
  open: boolean
  initial: RuleDraft
  title: string
  errors: DraftErrors
  saving: boolean
  onSave: (draft: RuleDraft) => void
  onClose: () => void
}) {
  const [draft, setDraft] = useState(initial)
  useEffect(() => setDraft(initial), [initial])
  const set = <K extends keyof RuleDraft>(key: K, value: RuleDraft[K]) => setDraft((d) => ({ ...d, [key]: value }))
  const submit = (e: FormEvent) => {
    e.preventDefault()
    onSave(draft)
  }
  return (
    <Drawer open={open} title={title} onClose={onClose} side="center">
      <form onSubmit={submit} className="space-y-4" noValidate>
        {errors.form && (
          <p role="alert" className="rounded-lg border border-red-500/60 bg-red-950/70 px-3 py-2 text-sm text-red-100">
            {errors.form}
          </p>
        )}
        <div className="grid grid-cols-2 gap-4">
          <TextField label="Rule id" inputMode="numeric" value={draft.id} onChange={(e) => set('id', e.target.value)} error={errors.id} required />
          <SelectField label="Action" value={draft.action} onChange={(e) => set('action', e.target.value as Action)} error={errors.action}>
            <option value="deny">deny</option>
            <option value="allow">allow</option>
          </SelectField>
        </div>
        <SelectField label="Match" value={draft.kind} onChange={(e) => set('kind', e.target.value as MatchKind)}>
          <option value="src">source address (CIDR)</option>
          <option value="dst">destination address (CIDR)</option>
          <option value="port">port</option>
          <option value="proto">protocol</option>
        </SelectField>
        <TextField label={VALUE_LABEL[draft.kind]} value={draft.value} onChange={(e) => set('value', e.target.value)} error={errors.value} hint={VALUE_HINT[draft.kind]} required />
        {draft.kind === 'port' && (
          <div className="grid grid-cols-2 gap-4">
            <SelectField label="Port protocol" value={draft.portProto} onChange={(e) => set('portProto', e.target.value as RuleDraft['portProto'])} error={errors.portProto}>
              <option value="">tcp and udp</option>
              <option value="tcp">tcp</option>
              <option value="udp">udp</option>
            </SelectField>
            <SelectField label="Which port" value={draft.direction} onChange={(e) => set('direction', e.target.value as 'src' | 'dst')} error={errors.direction}>
              <option value="dst">destination</option>
              <option value="src">source</option>
            </SelectField>
          </div>
        )}
        <div className="flex justify-end gap-2 pt-2">
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={saving}>
            {saving ? 'Saving…' : 'Save rule'}
          </Button>
        </div>
      </form>
    </Drawer>
  )
}
