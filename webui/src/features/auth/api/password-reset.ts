import { useMutation } from '@tanstack/react-query'
import { api } from '@/lib/api-client'

export const useRequestPasswordReset = () =>
  useMutation({ mutationFn: (email: string) => api.post('/auth/password-reset', { email }) })

export const useResetPassword = () =>
  useMutation({
    mutationFn: ({ token, password }: { token: string; password: string }) =>
      api.post('/auth/password-reset/confirm', { token, password }),
  })
