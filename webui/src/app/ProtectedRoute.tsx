/** Routes behind a login (and, per page, a scope). Unauthenticated → /login?next=… */
import type { ReactNode } from 'react'
import { Navigate, useLocation } from 'react-router-dom'
import { ShieldOff } from 'lucide-react'
import { useAuth } from '@/lib/auth'
import { ErrorNotice, Skeleton } from '@/components/ui/Feedback'

export function ProtectedRoute({ children }: { children: ReactNode }) {
  const { me, isLoading, error } = useAuth()
  const location = useLocation()
  if (isLoading) {
    return (
      <div role="status" aria-label="Loading your session" className="flex min-h-screen items-center justify-center bg-slate-900">
        <Skeleton className="h-8 w-48" />
      </div>
    )
  }
  if (error && !me) {
    return (
      <div className="mx-auto max-w-xl p-10">
        <ErrorNotice error={error} title="Could not reach the control plane" onRetry={() => window.location.reload()} />
      </div>
    )
  }
  if (!me) {
    const next = location.pathname + location.search
    return <Navigate to={`/login${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`} replace />
  }
  return <>{children}</>
}

export function RequireScope({ scope, somewhere = false, children }: { scope: string; somewhere?: boolean; children: ReactNode }) {
  const auth = useAuth()
  const allowed = somewhere ? auth.canSomewhere(scope) : auth.can(scope)
  if (allowed) return <>{children}</>
  return (
    <div className="mx-auto mt-16 max-w-lg text-center">
      <ShieldOff className="mx-auto h-10 w-10 text-amber-500" aria-hidden />
      <h1 className="mt-3 text-2xl font-semibold text-amber-400">No access</h1>
      <p className="mt-2 text-amber-500">
        This page needs the <code className="text-amber-200">{scope}</code> scope. Ask an administrator for a role that holds it.
      </p>
    </div>
  )
}

/** Where "/" leads: the first page the user may see. */
export function HomeRedirect() {
  const auth = useAuth()
  const target = auth.canSomewhere('stats:read')
    ? '/dashboard'
    : auth.canSomewhere('flows:read')
      ? '/flows'
      : auth.canSomewhere('dataplane:read')
        ? '/nodes'
        : '/profile'
  return <Navigate to={target} replace />
}
