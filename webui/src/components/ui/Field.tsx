/** Labelled inputs with their error on the field (aria-invalid + aria-describedby). */
import { useId, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes } from 'react'

const control =
  'w-full rounded-lg border bg-slate-900 px-3 py-2 text-amber-100 placeholder:text-amber-600 focus:outline-none focus:ring-2 focus:ring-primary-500 disabled:opacity-60'

interface Common {
  label: string
  error?: string | null
  hint?: ReactNode
}

export function TextField({ label, error, hint, id, className = '', ...props }: Common & InputHTMLAttributes<HTMLInputElement>) {
  const auto = useId()
  const inputId = id ?? auto
  const describedBy = [error ? `${inputId}-error` : null, hint ? `${inputId}-hint` : null].filter(Boolean).join(' ') || undefined
  return (
    <div className={className}>
      <label htmlFor={inputId} className="mb-1 block text-sm font-medium text-amber-300">
        {label}
      </label>
      <input
        id={inputId}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy}
        className={`${control} ${error ? 'border-red-500' : 'border-slate-600'}`}
        {...props}
      />
      {hint && !error && (
        <p id={`${inputId}-hint`} className="mt-1 text-xs text-amber-500">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${inputId}-error`} className="mt-1 text-xs text-red-300">
          {error}
        </p>
      )}
    </div>
  )
}

export function SelectField({ label, error, hint, id, className = '', children, ...props }: Common & SelectHTMLAttributes<HTMLSelectElement>) {
  const auto = useId()
  const inputId = id ?? auto
  return (
    <div className={className}>
      <label htmlFor={inputId} className="mb-1 block text-sm font-medium text-amber-300">
        {label}
      </label>
      <select
        id={inputId}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${inputId}-error` : hint ? `${inputId}-hint` : undefined}
        className={`${control} ${error ? 'border-red-500' : 'border-slate-600'}`}
        {...props}
      >
        {children}
      </select>
      {hint && !error && (
        <p id={`${inputId}-hint`} className="mt-1 text-xs text-amber-500">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${inputId}-error`} className="mt-1 text-xs text-red-300">
          {error}
        </p>
      )}
    </div>
  )
}

export function Checkbox({ label, id, ...props }: { label: ReactNode } & InputHTMLAttributes<HTMLInputElement>) {
  const auto = useId()
  const inputId = id ?? auto
  return (
    <label htmlFor={inputId} className="inline-flex items-center gap-2 text-sm text-amber-300 cursor-pointer">
      <input id={inputId} type="checkbox" className="h-4 w-4 rounded border-slate-500 bg-slate-900 accent-sky-500 focus-visible:ring-2 focus-visible:ring-primary-500" {...props} />
      {label}
    </label>
  )
}
