import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from '@/lib/api-client'

export interface NodeInterface {
  name: string
  mode: string
  attach_mode: string
}

export interface NodeInfo {
  node_id: string
  instance_id: string
  version: string
  peer: string
  connected: boolean
  connected_since: number | null
  last_seen: number | null
  capabilities: string[]
  last_applied_seq: number
  rules_generation_applied: number
  rules_error: string | null
  config_generation_applied: number
  loss: Record<string, number>
  interfaces: NodeInterface[]
}

export const nodesQueryOptions = () =>
  queryOptions({
    queryKey: ['nodes'],
    queryFn: async () => (await api.get<NodeInfo[]>('/nodes')).data,
    refetchInterval: 5_000,
  })

export const useNodes = () => useQuery(nodesQueryOptions())
