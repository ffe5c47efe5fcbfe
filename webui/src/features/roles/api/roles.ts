import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '@/lib/api-client'
import { rolesQueryOptions, type Role } from '@/lib/resources/identity'

export const useRoles = () => useQuery(rolesQueryOptions())

function useInvalidate() {
  const queryClient = useQueryClient()
  return () => queryClient.invalidateQueries({ queryKey: ['roles'] })
}

export const useCreateRole = () => {
  const invalidate = useInvalidate()
  return useMutation({
    mutationFn: async (body: { name: string; description?: string; scopes: string[]; level: Role['level'] }) => (await api.post<Role>('/roles', body)).data,
    onSuccess: invalidate,
  })
}

export const useUpdateRole = () => {
  const invalidate = useInvalidate()
  return useMutation({
    mutationFn: async ({ id, ...body }: { id: number; description?: string; scopes?: string[] }) => (await api.patch<Role>(`/roles/${id}`, body)).data,
    onSuccess: invalidate,
  })
}

export const useDeleteRole = () => {
  const invalidate = useInvalidate()
  return useMutation({ mutationFn: async (id: number) => (await api.delete(`/roles/${id}`)).data, onSuccess: invalidate })
}
