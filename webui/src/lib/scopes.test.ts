import { describe, expect, it } from 'vitest'
import { can, canSomewhere, covers, nodesFor } from './scopes'

describe('scopes', () => {
  it('admin ⊇ write ⊇ read, as the server decides', () => {
    expect(covers(['rules:write'], 'rules:read')).toBe(true)
    expect(covers(['users:admin'], 'users:write')).toBe(true)
    expect(covers(['rules:read'], 'rules:write')).toBe(false)
    expect(covers(['users:write'], 'users:admin')).toBe(false)
  })
  it('node grants count somewhere, never globally', () => {
    const me = { scopes: [], node_scopes: { 'edge-1': ['stats:read', 'flows:read'], 'edge-2': ['dataplane:write'] } }
    expect(can(me, 'stats:read')).toBe(false)
    expect(canSomewhere(me, 'stats:read')).toBe(true)
    expect(canSomewhere(me, 'dataplane:read')).toBe(true)
    expect(nodesFor(me, 'flows:read')).toEqual(['edge-1'])
    expect(nodesFor({ scopes: ['flows:read'] }, 'flows:read')).toBeNull()
  })
})
