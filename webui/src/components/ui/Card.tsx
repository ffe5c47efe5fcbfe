import type { ReactNode } from 'react'

export function Card({ title, actions, children, className = '', bodyClassName = 'p-4' }: {
  title?: ReactNode
  actions?: ReactNode
  children: ReactNode
  className?: string
  bodyClassName?: string
}) {
  return (
    // contain: a live card's re-layout stays inside the card, not the whole page.
    <section className={`bg-slate-800 border border-slate-700 rounded-lg shadow-lg [contain:layout_paint] ${className}`}>
      {(title || actions) && (
        <div className="flex items-center justify-between gap-2 px-4 py-3 border-b border-slate-700">
          {title && <h2 className="text-sm font-semibold text-amber-400">{title}</h2>}
          {actions && <div className="flex items-center gap-2">{actions}</div>}
        </div>
      )}
      <div className={`${bodyClassName} text-amber-400`}>{children}</div>
    </section>
  )
}

export function StatTile({ label, value, hint }: { label: string; value: ReactNode; hint?: ReactNode }) {
  return (
    <div className="bg-slate-800 border border-slate-700 rounded-lg px-4 py-3">
      <div className="text-xs uppercase tracking-wide text-amber-500">{label}</div>
      <div className="mt-1 text-2xl font-semibold text-amber-100 tabular-nums" aria-live="off">{value}</div>
      {hint && <div className="mt-0.5 text-xs text-amber-500">{hint}</div>}
    </div>
  )
}
