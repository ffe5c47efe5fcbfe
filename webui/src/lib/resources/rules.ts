import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '@/lib/api-client'

export type Action = 'allow' | 'deny'

export interface Rule {
  id: number
  action: Action
  src?: string
  dst?: string
  port?: number
  proto?: string | number
  direction?: 'src' | 'dst' | 'both'
  [extra: string]: unknown
}

export interface RuleSet {
  generation: number
  default_action: Action
  rules: Rule[]
}

export const rulesQueryKey = ['rules'] as const

export const rulesQueryOptions = () =>
  queryOptions({
    queryKey: rulesQueryKey,
    queryFn: async () => (await api.get<RuleSet>('/rules')).data,
    refetchInterval: 10_000,
  })

export const useRules = () => useQuery(rulesQueryOptions())

export const useSaveRules = () => {
  const queryClient = useQueryClient()
  return useMutation({
    mutationFn: async (set: { default_action: Action; rules: Rule[] }) => (await api.put<RuleSet>('/rules', set)).data,
    onSuccess: (saved) => {
      queryClient.setQueryData(rulesQueryKey, saved)
      void queryClient.invalidateQueries({ queryKey: ['nodes'] })
    },
  })
}
