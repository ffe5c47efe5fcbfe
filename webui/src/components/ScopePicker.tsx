/** Pick scopes from the catalogue (resources × levels); scopes the caller does not hold are
 *  shown but disabled (the API would refuse them: scope_escalation). */
import { useQuery } from '@tanstack/react-query'
import { Skeleton } from '@/components/ui/Feedback'
import { useAuth } from '@/lib/auth'
import { scopeCatalogueQueryOptions } from '@/lib/resources/identity'

export function ScopePicker({ value, onChange, legend, error }: { value: string[]; onChange: (scopes: string[]) => void; legend: string; error?: string | null }) {
  const auth = useAuth()
  const catalogue = useQuery(scopeCatalogueQueryOptions())
  if (catalogue.isLoading) return <Skeleton className="h-40 w-full" label="Loading scopes" />
  const resources = Object.entries(catalogue.data?.resources ?? {})
  const toggle = (scope: string, on: boolean) => onChange(on ? [...new Set([...value, scope])].sort() : value.filter((s) => s !== scope))
  return (
    <fieldset aria-describedby={error ? 'scope-picker-error' : undefined} className="rounded-lg border border-slate-600 p-3">
      <legend className="px-1 text-sm font-medium text-amber-300">{legend}</legend>
      <div className="grid grid-cols-1 gap-x-4 gap-y-1 sm:grid-cols-2">
        {resources.map(([resource, levels]) => (
          <div key={resource} className="flex flex-wrap items-center gap-x-3 py-1">
            <span className="w-24 text-sm font-semibold text-amber-400">{resource}</span>
            {levels.map((level) => {
              const scope = `${resource}:${level}`
              const held = auth.can(scope)
              return (
                <label key={scope} className={`inline-flex items-center gap-1 text-sm ${held ? 'text-amber-200' : 'text-amber-600'}`} title={held ? scope : `${scope}: you do not hold it`}>
                  <input type="checkbox" className="h-4 w-4 accent-sky-500" checked={value.includes(scope)} disabled={!held} onChange={(e) => toggle(scope, e.target.checked)} aria-label={scope} />
                  {level}
                </label>
              )
            })}
          </div>
        ))}
      </div>
      {error && (
        <p id="scope-picker-error" className="mt-2 text-xs text-red-300">
          {error}
        </p>
      )}
    </fieldset>
  )
}
