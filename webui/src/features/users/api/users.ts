import { keepPreviousData, queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '@/lib/api-client'
import { getPage, type User } from '@/lib/resources/identity'

export interface UserFilters {
  email?: string
  active?: '' | 'true' | 'false'
  role?: string
  offset: number
}

export const PAGE = 25

export const usersQueryOptions = (f: UserFilters) =>
  queryOptions({
    queryKey: ['users', f],
    queryFn: () => getPage<User>('/users', { email: f.email || undefined, active: f.active || undefined, role: f.role || undefined, offset: f.offset, limit: PAGE }),
    placeholderData: keepPreviousData,
  })

export const useUsers = (f: UserFilters) => useQuery(usersQueryOptions(f))

function useInvalidate() {
  const queryClient = useQueryClient()
  return () => queryClient.invalidateQueries({ queryKey: ['users'] })
}

export const useCreateUser = () => {
  const invalidate = useInvalidate()
  return useMutation({
    mutationFn: async (body: { email: string; password: string; roles: string[]; display_name?: string }) => (await api.post<User>('/users', body)).data,
    onSuccess: invalidate,
  })
}

export const useUpdateUser = () => {
  const invalidate = useInvalidate()
  return useMutation({
    mutationFn: async ({ id, ...body }: { id: number; active?: boolean; roles?: string[]; display_name?: string }) => (await api.patch<User>(`/users/${id}`, body)).data,
    onSuccess: invalidate,
  })
}

export const useDeleteUser = () => {
  const invalidate = useInvalidate()
  return useMutation({
    mutationFn: async (id: number) => (await api.delete(`/users/${id}`)).data,
    onSuccess: invalidate,
  })
}
