import { keepPreviousData, queryOptions, useQuery } from '@tanstack/react-query'
import { getPage } from '@/lib/resources/identity'

export interface AuditEntry {
  id: number
  at: string
  action: string
  success: boolean
  actor_user_id: number | null
  actor_client_id: number | null
  target: string | null
  ip: string | null
  details: Record<string, unknown> | null
}

export interface AuditFilters {
  action?: string
  actor_user_id?: string
  target?: string
  since?: string
  offset: number
}

export const AUDIT_PAGE = 50

export const auditQueryOptions = (f: AuditFilters) =>
  queryOptions({
    queryKey: ['audit', f],
    queryFn: () => getPage<AuditEntry>('/audit', { ...f, since: f.since ? new Date(f.since).toISOString() : undefined, limit: AUDIT_PAGE }),
    placeholderData: keepPreviousData,
  })

export const useAudit = (f: AuditFilters) => useQuery(auditQueryOptions(f))
