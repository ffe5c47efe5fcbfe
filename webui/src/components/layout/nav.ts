/** The sidebar's items and the scope each needs (navigation follows scopes). */
import type { LucideIcon } from 'lucide-react'
import { Activity, ClipboardList, KeyRound, LayoutDashboard, ListFilter, Server, Shield, ShieldCheck, Users, UsersRound } from 'lucide-react'

export interface NavItem {
  name: string
  href: string
  icon: LucideIcon
  /** Needed globally, or (somewhere: true) on at least one node. */
  scope: string
  somewhere?: boolean
}

export interface NavCategory {
  header: string
  items: NavItem[]
  admin?: boolean
}

export const primaryNav: NavItem[] = [
  { name: 'Dashboard', href: '/dashboard', icon: LayoutDashboard, scope: 'stats:read', somewhere: true },
  { name: 'Flows', href: '/flows', icon: Activity, scope: 'flows:read', somewhere: true },
]

export const categories: NavCategory[] = [
  {
    header: 'Network',
    items: [
      { name: 'Nodes & interfaces', href: '/nodes', icon: Server, scope: 'dataplane:read', somewhere: true },
      { name: 'Rules', href: '/rules', icon: ListFilter, scope: 'rules:read' },
    ],
  },
  {
    header: 'Administration',
    admin: true,
    items: [
      { name: 'Users', href: '/admin/users', icon: Users, scope: 'users:read' },
      { name: 'Roles', href: '/admin/roles', icon: ShieldCheck, scope: 'roles:read' },
      { name: 'Teams', href: '/admin/teams', icon: UsersRound, scope: 'teams:read' },
      { name: 'API clients', href: '/admin/clients', icon: KeyRound, scope: 'clients:read' },
      { name: 'Audit log', href: '/admin/audit', icon: ClipboardList, scope: 'audit:read' },
    ],
  },
]

export const adminIcon = Shield
