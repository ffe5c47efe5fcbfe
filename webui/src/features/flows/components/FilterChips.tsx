/** The API's flow filters as chips: pick a field, type a value, Enter adds the chip. A chip
 *  the server (or the feed's own check) refused shows why beside it. */
import { useState, type FormEvent } from 'react'
import { Plus } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { SelectField, TextField } from '@/components/ui/Field'
import { Chip } from '@/components/ui/Misc'
import { FLOW_FILTER_FIELDS, type FlowQuery } from '@/lib/stream/flows'

const LABELS: Record<keyof FlowQuery, string> = {
  ip: 'IP (either end)',
  port: 'Port (either end)',
  proto: 'Protocol',
  node: 'Node',
  interface: 'Interface',
  state: 'State',
  end_reason: 'End reason',
}

const HINTS: Partial<Record<keyof FlowQuery, string>> = {
  ip: 'an IPv4 or IPv6 address',
  port: '0-65535',
  proto: 'tcp, udp, icmp… or a number',
  state: 'new, established, closing, closed (comma-separated)',
  end_reason: 'none, idle_timeout, active_timeout, tcp_fin, tcp_rst, evicted, shutdown',
}

export function FilterChips({ query, onChange, errors }: { query: FlowQuery; onChange: (q: FlowQuery) => void; errors?: Partial<Record<keyof FlowQuery, string>> }) {
  const [field, setField] = useState<keyof FlowQuery>('ip')
  const [value, setValue] = useState('')
  const add = (e: FormEvent) => {
    e.preventDefault()
    const v = value.trim()
    if (!v) return
    onChange({ ...query, [field]: v })
    setValue('')
  }
  const active = FLOW_FILTER_FIELDS.filter((f) => query[f])
  return (
    <div className="space-y-3">
      <form onSubmit={add} className="flex flex-wrap items-end gap-3" aria-label="Add a flow filter">
        <SelectField label="Filter" value={field} onChange={(e) => setField(e.target.value as keyof FlowQuery)} className="w-44">
          {FLOW_FILTER_FIELDS.map((f) => (
            <option key={f} value={f}>
              {LABELS[f]}
            </option>
          ))}
        </SelectField>
        <TextField label="Value" value={value} onChange={(e) => setValue(e.target.value)} hint={HINTS[field]} className="w-64" maxLength={200} />
        <Button type="submit" variant="secondary" icon={<Plus className="w-4 h-4" aria-hidden />}>
          Add filter
        </Button>
      </form>
      {active.length === 0 ? (
        <p className="text-sm text-amber-500">No filters: every flow you may see.</p>
      ) : (
        <ul className="flex flex-wrap items-center gap-2" aria-label="Active filters">
          {active.map((f) => (
            <li key={f}>
              <Chip
                label={`${f} = ${query[f]}`}
                onRemove={() => {
                  const next = { ...query }
                  delete next[f]
                  onChange(next)
                }}
              />
              {errors?.[f] && (
                <span className="ml-1 text-xs text-red-300" role="alert" data-testid={`chip-error-${f}`}>
                  {errors[f]}
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
