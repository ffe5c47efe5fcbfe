/** Sidebar + main content (offset by the sidebar's width from 768 px up; a menu button
 *  below), the live indicator, and the "change your password" banner. Owns the stream's
 *  lifetime: connected while someone is logged in. */
import { useEffect, useState } from 'react'
import { Link, Outlet, useLocation } from 'react-router-dom'
import { Menu, X } from 'lucide-react'
import { useAuth } from '@/lib/auth'
import { getStream } from '@/lib/stream/store'
import { LiveIndicator } from './LiveIndicator'
import { Sidebar } from './Sidebar'

export function AppLayout() {
  const auth = useAuth()
  const location = useLocation()
  const [menuOpen, setMenuOpen] = useState(false)
  const streamAllowed = auth.canSomewhere('stats:read')

  useEffect(() => {
    if (!streamAllowed) return
    const stream = getStream()
    stream.start()
    return () => stream.stop()
  }, [streamAllowed])

  useEffect(() => setMenuOpen(false), [location.pathname])

  return (
    <div className="min-h-screen bg-slate-900">
      <a href="#main" className="sr-only focus:not-sr-only focus:fixed focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-primary-700 focus:px-3 focus:py-2 focus:text-white">
        Skip to content
      </a>
      <aside
        className={`fixed inset-y-0 left-0 z-40 w-64 bg-slate-800 border-r border-slate-700 transition-transform md:translate-x-0 ${menuOpen ? 'translate-x-0' : '-translate-x-full'}`}
        aria-label="Sidebar"
      >
        <Sidebar onNavigate={() => setMenuOpen(false)} />
      </aside>
      {menuOpen && <div className="fixed inset-0 z-30 bg-slate-950/60 md:hidden" aria-hidden onClick={() => setMenuOpen(false)} />}
      <div className="md:pl-64">
        <header className="sticky top-0 z-20 flex h-14 items-center justify-between gap-3 border-b border-slate-700 bg-slate-900/95 px-4 backdrop-blur">
          <button
            type="button"
            className="rounded p-2 text-amber-400 hover:bg-slate-700 focus-visible:ring-2 focus-visible:ring-primary-500 md:hidden"
            onClick={() => setMenuOpen((o) => !o)}
            aria-label={menuOpen ? 'Close menu' : 'Open menu'}
            aria-expanded={menuOpen}
          >
            {menuOpen ? <X className="w-5 h-5" aria-hidden /> : <Menu className="w-5 h-5" aria-hidden />}
          </button>
          <div className="flex-1" />
          {streamAllowed && <LiveIndicator />}
        </header>
        {auth.passwordChangeRequired && location.pathname !== '/profile' && (
          <div role="alert" className="border-b border-yellow-600/50 bg-yellow-950/70 px-6 py-3 text-sm text-yellow-100">
            Your account still uses its default or an administrator-set password.{' '}
            <Link to="/profile?tab=password" className="font-semibold text-primary-300 underline hover:text-primary-200">
              Change it now
            </Link>
            .
          </div>
        )}
        <main id="main" className="min-h-[calc(100vh-3.5rem)] p-6" tabIndex={-1}>
          <Outlet />
        </main>
      </div>
    </div>
  )
}
