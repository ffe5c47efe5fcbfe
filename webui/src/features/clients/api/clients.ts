import { keepPreviousData, queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '@/lib/api-client'
import { getPage } from '@/lib/resources/identity'

export interface ApiClient {
  id: number
  name: string
  prefix: string
  scopes: string[]
  owner_user_id: number | null
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
  created_at: string
  node_id: string | null
}

/** Create and rotate answers: the only time the plaintext key exists outside the caller. */
export interface IssuedClient extends ApiClient {
  api_key: string
}

export const clientsQueryOptions = (includeRevoked: boolean, offset: number) =>
  queryOptions({
    queryKey: ['clients', { includeRevoked, offset }],
    queryFn: () => getPage<ApiClient>('/clients', { include_revoked: includeRevoked || undefined, offset, limit: 50 }),
    placeholderData: keepPreviousData,
  })

export const useClients = (includeRevoked: boolean, offset: number) => useQuery(clientsQueryOptions(includeRevoked, offset))

function useInvalidate() {
  const queryClient = useQueryClient()
  return () => queryClient.invalidateQueries({ queryKey: ['clients'] })
}

export const useCreateClient = () => {
  const invalidate = useInvalidate()
  return useMutation({
    mutationFn: async (body: { name: string; scopes: string[]; expires_at?: string; node_id?: string }) => (await api.post<IssuedClient>('/clients', body)).data,
    onSuccess: invalidate,
  })
}

export const useRotateClient = () => {
  const invalidate = useInvalidate()
  return useMutation({ mutationFn: async (id: number) => (await api.post<IssuedClient>(`/clients/${id}/rotate`)).data, onSuccess: invalidate })
}

export const useRevokeClient = () => {
  const invalidate = useInvalidate()
  return useMutation({ mutationFn: async (id: number) => (await api.delete(`/clients/${id}`)).data, onSuccess: invalidate })
}
