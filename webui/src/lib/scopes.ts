/**
 * Scope checks exactly as the control plane makes them (app/types.py `covers`):
 * `x:admin` ⊇ `x:write` ⊇ `x:read`, globally or on a node through a grant.
 */
export function covers(granted: Iterable<string>, scope: string): boolean {
  const set = granted instanceof Set ? (granted as Set<string>) : new Set(granted)
  if (set.has(scope)) return true
  const [resource, level] = scope.split(':')
  if (level === 'read') return set.has(`${resource}:write`) || set.has(`${resource}:admin`)
  if (level === 'write') return set.has(`${resource}:admin`)
  return false
}

export interface ScopeHolder {
  scopes: string[]
  node_scopes?: Record<string, string[]>
}

/** Held globally. */
export function can(holder: ScopeHolder | null | undefined, scope: string): boolean {
  return holder ? covers(holder.scopes, scope) : false
}

/** Held globally or on at least one node (what a node-granted user sees). */
export function canSomewhere(holder: ScopeHolder | null | undefined, scope: string): boolean {
  if (!holder) return false
  if (covers(holder.scopes, scope)) return true
  return Object.values(holder.node_scopes ?? {}).some((granted) => covers(granted, scope))
}

/** Nodes a scope reaches: null = every node (held globally). */
export function nodesFor(holder: ScopeHolder | null | undefined, scope: string): string[] | null {
  if (!holder) return []
  if (covers(holder.scopes, scope)) return null
  return Object.entries(holder.node_scopes ?? {})
    .filter(([, granted]) => covers(granted, scope))
    .map(([node]) => node)
    .sort()
}

/** True when the user holds any admin-area read scope (shows the yellow Admin section). */
export function isAdminArea(holder: ScopeHolder | null | undefined): boolean {
  return ['users:read', 'roles:read', 'teams:read', 'clients:read', 'audit:read'].some((s) =>
    can(holder, s),
  )
}
