import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '@/lib/api-client'
import type { User } from '@/lib/resources/identity'

export const profileQueryOptions = () =>
  queryOptions({ queryKey: ['me', 'profile'], queryFn: async () => (await api.get<User>('/me/profile')).data })

export const useProfile = (enabled: boolean) => useQuery({ ...profileQueryOptions(), enabled })

export const useUpdateProfile = () => {
  const queryClient = useQueryClient()
  return useMutation({
    mutationFn: async (display_name: string) => (await api.patch<User>('/me/profile', { display_name })).data,
    onSuccess: (user) => queryClient.setQueryData(['me', 'profile'], user),
  })
}

export const useChangePassword = () =>
  useMutation({ mutationFn: async (b: { current_password: string; new_password: string }) => (await api.post('/me/password', b)).data })

export interface Enrolment {
  secret: string
  otpauth_uri: string
}

export const useTotp = () => {
  const queryClient = useQueryClient()
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['me', 'profile'] })
  return {
    enrol: useMutation({ mutationFn: async () => (await api.post<Enrolment>('/me/2fa/totp')).data }),
    verify: useMutation({
      mutationFn: async (code: string) => (await api.post<{ enabled: boolean; recovery_codes: string[] }>('/me/2fa/totp/verify', { code })).data,
      onSuccess: refresh,
    }),
    disable: useMutation({ mutationFn: async (code: string) => (await api.delete('/me/2fa/totp', { code })).data, onSuccess: refresh }),
  }
}

export const useLogoutEverywhere = () =>
  useMutation({ mutationFn: async () => (await api.post<{ revoked: number }>('/me/logout-everywhere')).data })
