/** Identity resources shared by several admin pages: roles, the scope catalogue, users. */
import { queryOptions } from '@tanstack/react-query'
import { api } from '@/lib/api-client'

export interface Role {
  id: number
  name: string
  description: string | null
  scopes: string[]
  builtin: boolean
  level: 'global' | 'team' | 'resource'
}

export interface ScopeCatalogue {
  resources: Record<string, string[]>
  builtin_roles: Record<string, { level: string; scopes: string[] }>
}

export interface User {
  id: number
  email: string
  display_name: string | null
  active: boolean
  confirmed: boolean
  totp_enabled: boolean
  roles: string[]
  teams: unknown[]
  last_login_at: string | null
  current_login_at: string | null
  current_login_ip: string | null
  login_count: number
  locked_until: string | null
  created_at: string
}

export interface Page<T> {
  items: T[]
  total: number
  offset: number
  limit: number
}

export async function getPage<T>(url: string, params: Record<string, string | number | boolean | undefined>): Promise<Page<T>> {
  const answer = await api.get<T[]>(url, { params })
  return {
    items: answer.data,
    total: Number(answer.meta.total ?? answer.data.length),
    offset: Number(answer.meta.offset ?? 0),
    limit: Number(answer.meta.limit ?? answer.data.length),
  }
}

export const rolesQueryOptions = (level?: string) =>
  queryOptions({
    queryKey: ['roles', level ?? 'all'],
    queryFn: async () => (await getPage<Role>('/roles', { level, limit: 200 })).items,
  })

export const scopeCatalogueQueryOptions = () =>
  queryOptions({
    queryKey: ['roles', 'scopes'],
    queryFn: async () => (await api.get<ScopeCatalogue>('/roles/scopes')).data,
    staleTime: 300_000,
  })
