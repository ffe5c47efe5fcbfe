/** The Elder-style fixed left sidebar: logo, primary items, collapsible categories, the
 *  admin section in yellow, and the user section at the bottom. Items follow scopes. */
import { useState } from 'react'
import { Link, useLocation } from 'react-router-dom'
import { ChevronDown, ChevronRight, LogOut, UserRound } from 'lucide-react'
import { useAuth } from '@/lib/auth'
import { categories, primaryNav, type NavItem } from './nav'

const COLLAPSE_KEY = 'floe.sidebar.collapsed'

function loadCollapsed(): Record<string, boolean> {
  try {
    return JSON.parse(sessionStorage.getItem(COLLAPSE_KEY) ?? '{}') as Record<string, boolean>
  } catch {
    return {}
  }
}

export function Sidebar({ onNavigate }: { onNavigate?: () => void }) {
  const location = useLocation()
  const auth = useAuth()
  const [collapsedCategories, setCollapsedCategories] = useState<Record<string, boolean>>(loadCollapsed)

  const toggleCategory = (header: string) => {
    setCollapsedCategories((prev) => {
      const next = { ...prev, [header]: !prev[header] }
      sessionStorage.setItem(COLLAPSE_KEY, JSON.stringify(next))
      return next
    })
  }

  const visible = (item: NavItem) => (item.somewhere ? auth.canSomewhere(item.scope) : auth.can(item.scope))
  const isActive = (href: string) => location.pathname === href || location.pathname.startsWith(href + '/')

  const link = (item: NavItem, admin = false) => {
    const active = isActive(item.href)
    const Icon = item.icon
    const style = admin
      ? active
        ? 'bg-yellow-600/20 text-yellow-400 border border-yellow-600/30'
        : 'text-yellow-400 hover:bg-slate-700 hover:text-yellow-200 border border-transparent'
      : active
        ? 'bg-primary-700 text-white'
        : 'text-amber-400 hover:bg-slate-700 hover:text-amber-200'
    return (
      <li key={item.href}>
        <Link
          to={item.href}
          onClick={onNavigate}
          aria-current={active ? 'page' : undefined}
          className={`flex items-center px-4 py-3 text-sm font-medium rounded-lg transition-colors focus:outline-none focus-visible:ring-2 focus-visible:ring-primary-500 ${style}`}
        >
          <Icon className="w-5 h-5 mr-3" aria-hidden />
          {item.name}
        </Link>
      </li>
    )
  }

  return (
    <nav aria-label="Main" className="flex h-full flex-col">
      <div className="flex h-16 shrink-0 items-center justify-center border-b border-slate-700">
        <Link to="/dashboard" onClick={onNavigate} className="flex items-center gap-2 rounded-lg px-2 py-1 focus-visible:ring-2 focus-visible:ring-primary-500">
          <img src="/images/floe-mark.svg" alt="" className="h-9 w-9" />
          <span className="text-xl font-bold tracking-wide text-amber-400">Floe</span>
        </Link>
      </div>
      <div className="flex-1 space-y-4 overflow-y-auto px-3 py-4">
        <ul className="space-y-1">{primaryNav.filter(visible).map((item) => link(item))}</ul>
        {categories.map((category) => {
          const items = category.items.filter(visible)
          if (items.length === 0) return null
          const collapsed = collapsedCategories[category.header] === true
          const listId = `nav-${category.header.toLowerCase().replace(/\W+/g, '-')}`
          return (
            <div key={category.header} className={category.admin ? 'border-t border-yellow-600/30 pt-3' : 'border-t border-slate-700 pt-3'}>
              <button
                type="button"
                onClick={() => toggleCategory(category.header)}
                aria-expanded={!collapsed}
                aria-controls={listId}
                className={`flex w-full items-center justify-between rounded px-4 py-1.5 text-xs font-semibold uppercase tracking-wider focus-visible:ring-2 focus-visible:ring-primary-500 ${category.admin ? 'text-yellow-400' : 'text-amber-500'}`}
              >
                {category.header}
                {collapsed ? <ChevronRight className="w-4 h-4" aria-hidden /> : <ChevronDown className="w-4 h-4" aria-hidden />}
              </button>
              {!collapsed && (
                <ul id={listId} className="mt-1 space-y-1">
                  {items.map((item) => link(item, category.admin))}
                </ul>
              )}
            </div>
          )
        })}
      </div>
      <div className="border-t border-slate-700 px-3 py-3">
        <p className="truncate px-4 pb-2 text-xs text-amber-500" title={auth.me?.email ?? ''}>
          {auth.me?.email}
        </p>
        <ul className="space-y-1">
          {link({ name: 'Profile', href: '/profile', icon: UserRound, scope: '' })}
          <li>
            <button
              type="button"
              onClick={() => void auth.logout()}
              className="flex w-full items-center px-4 py-3 text-sm font-medium rounded-lg text-amber-400 transition-colors hover:bg-slate-700 hover:text-amber-200 focus:outline-none focus-visible:ring-2 focus-visible:ring-primary-500"
            >
              <LogOut className="w-5 h-5 mr-3" aria-hidden />
              Log out
            </button>
          </li>
        </ul>
      </div>
    </nav>
  )
}
