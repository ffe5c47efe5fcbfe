/** Loading skeletons, empty states that say what to do, and errors from the envelope. */
import type { ReactNode } from 'react'
import { AlertTriangle, Inbox } from 'lucide-react'
import { describeError, toApiError } from '@/lib/api-client'

export function Skeleton({ className = 'h-4 w-full', label }: { className?: string; label?: string }) {
  return <div className={`skeleton rounded bg-slate-700 ${className}`} aria-hidden={label ? undefined : true} aria-label={label} />
}

export function TableSkeleton({ rows = 5, label = 'Loading' }: { rows?: number; label?: string }) {
  return (
    <div role="status" aria-label={label} className="space-y-2 py-2">
      {Array.from({ length: rows }, (_, i) => (
        <Skeleton key={i} className="h-8 w-full" />
      ))}
      <span className="sr-only">{label}…</span>
    </div>
  )
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="flex flex-col items-center justify-center gap-2 py-10 text-center">
      <Inbox className="w-8 h-8 text-amber-500" aria-hidden />
      <p className="font-semibold text-amber-300">{title}</p>
      {children && <div className="max-w-md text-sm text-amber-500">{children}</div>}
      {action}
    </div>
  )
}

export function ErrorNotice({ error, title = 'Something went wrong', onRetry }: { error: unknown; title?: string; onRetry?: () => void }) {
  if (!error) return null
  const e = toApiError(error)
  return (
    <div role="alert" className="flex items-start gap-3 rounded-lg border border-red-500/50 bg-red-950/60 px-4 py-3 text-sm text-red-200">
      <AlertTriangle className="mt-0.5 w-5 h-5 shrink-0 text-red-400" aria-hidden />
      <div className="flex-1">
        <p className="font-semibold text-red-100">{title}</p>
        <p>{describeError(e)}</p>
        {e.code !== 'network_error' && e.status > 0 && (
          <p className="mt-1 text-xs text-red-300">
            {e.code} · HTTP {e.status}
            {e.requestId ? ` · request ${e.requestId}` : ''}
          </p>
        )}
      </div>
      {onRetry && (
        <button type="button" onClick={onRetry} className="rounded px-2 py-1 text-red-100 underline hover:text-white focus-visible:ring-2 focus-visible:ring-primary-500">
          Retry
        </button>
      )}
    </div>
  )
}

export function Notice({ tone = 'info', children }: { tone?: 'info' | 'warning' | 'success'; children: ReactNode }) {
  const tones = {
    info: 'border-primary-500/50 bg-primary-900/40 text-primary-100',
    warning: 'border-yellow-500/60 bg-yellow-950/60 text-yellow-100',
    success: 'border-green-500/50 bg-green-950/60 text-green-100',
  }
  return (
    <div role={tone === 'warning' ? 'alert' : 'status'} className={`rounded-lg border px-4 py-3 text-sm ${tones[tone]}`}>
      {children}
    </div>
  )
}
