import { useState, useSyncExternalStore, type ReactNode } from 'react'
import { Check, Copy, X } from 'lucide-react'
import { formatAbsolute, formatRelative } from '@/lib/format'

type TimeInput = Parameters<typeof formatAbsolute>[0]

// One clock for every <Time> on the page (not a timer per row: tables of live flows mount
// and unmount rows every second).
const clockListeners = new Set<() => void>()
let clockNow = Date.now()
let clockTimer: ReturnType<typeof setInterval> | null = null
function subscribeClock(listener: () => void): () => void {
  clockListeners.add(listener)
  clockTimer ??= setInterval(() => {
    clockNow = Date.now()
    for (const l of clockListeners) l()
  }, 15_000)
  return () => {
    clockListeners.delete(listener)
    if (clockListeners.size === 0 && clockTimer !== null) {
      clearInterval(clockTimer)
      clockTimer = null
    }
  }
}

/** Relative time, with the absolute one on hover/focus and for screen readers. */
export function Time({ value }: { value: TimeInput }) {
  useSyncExternalStore(subscribeClock, () => clockNow)
  const absolute = formatAbsolute(value)
  if (absolute === '—') return <span>—</span>
  return (
    <time dateTime={absolute.replace(' UTC', 'Z').replace(' ', 'T')} title={absolute}>
      {formatRelative(value)}
    </time>
  )
}

export function Badge({ tone = 'neutral', children }: { tone?: 'neutral' | 'good' | 'bad' | 'warn' | 'info' | 'admin'; children: ReactNode }) {
  const tones = {
    neutral: 'bg-slate-700 text-amber-200',
    good: 'bg-green-900/70 text-green-200',
    bad: 'bg-red-900/70 text-red-200',
    warn: 'bg-yellow-900/70 text-yellow-100',
    info: 'bg-primary-900/80 text-primary-100',
    admin: 'bg-yellow-600/20 text-yellow-300 border border-yellow-600/40',
  }
  return <span className={`inline-flex items-center gap-1 rounded px-2 py-0.5 text-xs font-medium ${tones[tone]}`}>{children}</span>
}

export function Chip({ label, onRemove }: { label: string; onRemove?: () => void }) {
  return (
    <span className="inline-flex items-center gap-1 rounded-full border border-primary-500/60 bg-primary-900/50 py-0.5 pl-3 pr-1 text-sm text-primary-100">
      {label}
      {onRemove && (
        <button type="button" onClick={onRemove} aria-label={`Remove filter ${label}`} className="rounded-full p-0.5 hover:bg-primary-800 focus-visible:ring-2 focus-visible:ring-primary-400">
          <X className="w-3.5 h-3.5" aria-hidden />
        </button>
      )}
    </span>
  )
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false)
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text)
      setCopied(true)
      setTimeout(() => setCopied(false), 2000)
    } catch {
      setCopied(false)
    }
  }
  return (
    <button type="button" onClick={() => void copy()} className="inline-flex items-center gap-1 rounded-lg bg-slate-700 px-3 py-1.5 text-sm text-amber-300 hover:bg-slate-600 focus-visible:ring-2 focus-visible:ring-primary-500">
      {copied ? <Check className="w-4 h-4" aria-hidden /> : <Copy className="w-4 h-4" aria-hidden />}
      <span aria-live="polite">{copied ? 'Copied' : label}</span>
    </button>
  )
}

export function PageHeader({ title, description, actions }: { title: string; description?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-6 flex flex-wrap items-start justify-between gap-4">
      <div>
        <h1 className="text-2xl font-semibold text-amber-400">{title}</h1>
        {description && <p className="mt-1 text-sm text-amber-500">{description}</p>}
      </div>
      {actions && <div className="flex flex-wrap items-center gap-2">{actions}</div>}
    </div>
  )
}

/** A scrollable table shell: header gold, rows with hover, horizontal scroll on tablets. */
export function Table({ caption, children }: { caption: string; children: ReactNode }) {
  return (
    // Focusable and named: a table wider than the window scrolls by keyboard too.
    <div className="overflow-x-auto rounded-lg border border-slate-700 focus-visible:ring-2 focus-visible:ring-primary-500" tabIndex={0} role="region" aria-label={caption}>
      <table className="min-w-full divide-y divide-slate-700 text-sm">
        <caption className="sr-only">{caption}</caption>
        {children}
      </table>
    </div>
  )
}

export const th = 'px-3 py-2 text-left text-xs font-semibold uppercase tracking-wide text-amber-400 bg-slate-800 whitespace-nowrap'
export const td = 'px-3 py-2 text-amber-200 whitespace-nowrap'
