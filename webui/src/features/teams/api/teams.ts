import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '@/lib/api-client'
import { getPage } from '@/lib/resources/identity'

export interface Team {
  id: number
  name: string
  description: string | null
  members: { user_id: number; email: string; role: string }[]
}

export interface TeamResource {
  id: number
  resource_type: string
  resource_id: string
  created_at: string
}

export const teamsQueryOptions = () =>
  queryOptions({ queryKey: ['teams'], queryFn: async () => (await getPage<Team>('/teams', { limit: 200 })).items })

export const teamResourcesQueryOptions = (id: number) =>
  queryOptions({ queryKey: ['teams', id, 'resources'], queryFn: async () => (await api.get<TeamResource[]>(`/teams/${id}/resources`)).data })

export const useTeams = () => useQuery(teamsQueryOptions())
export const useTeamResources = (id: number | null) => useQuery({ ...teamResourcesQueryOptions(id ?? 0), enabled: id !== null })

function useInvalidate() {
  const queryClient = useQueryClient()
  return () => queryClient.invalidateQueries({ queryKey: ['teams'] })
}

export const useTeamMutations = () => {
  const invalidate = useInvalidate()
  return {
    create: useMutation({ mutationFn: async (b: { name: string; description?: string }) => (await api.post<Team>('/teams', b)).data, onSuccess: invalidate }),
    remove: useMutation({ mutationFn: async (id: number) => api.delete(`/teams/${id}`), onSuccess: invalidate }),
    addMember: useMutation({
      mutationFn: async ({ team, user, role }: { team: number; user: number; role: string }) => api.put(`/teams/${team}/members/${user}`, { role }),
      onSuccess: invalidate,
    }),
    removeMember: useMutation({ mutationFn: async ({ team, user }: { team: number; user: number }) => api.delete(`/teams/${team}/members/${user}`), onSuccess: invalidate }),
    grant: useMutation({
      mutationFn: async ({ team, node }: { team: number; node: string }) => api.post(`/teams/${team}/resources`, { resource_type: 'node', resource_id: node }),
      onSuccess: invalidate,
    }),
    revoke: useMutation({
      mutationFn: async ({ team, resource }: { team: number; resource: number }) => api.delete(`/teams/${team}/resources/${resource}`),
      onSuccess: invalidate,
    }),
  }
}
