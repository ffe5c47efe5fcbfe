/**
 * A fake transport for the one API client (an axios adapter): tests declare answers per
 * "METHOD /path" and read what was sent. Nothing else in the app is mocked.
 */
import { AxiosError, AxiosHeaders, type AxiosAdapter, type InternalAxiosRequestConfig } from 'axios'
import { http } from '@/lib/api-client'

export interface Sent {
  method: string
  url: string
  params: Record<string, string> | undefined
  body: unknown
  headers: Record<string, string>
}

type Answer = { status?: number; data?: unknown; meta?: Record<string, unknown>; error?: { code: string; message: string; details?: unknown }; headers?: Record<string, string> }
type Handler = Answer | ((sent: Sent) => Answer)

export function mockApi(routes: Record<string, Handler>) {
  const sent: Sent[] = []
  const adapter: AxiosAdapter = async (config: InternalAxiosRequestConfig) => {
    const method = (config.method ?? 'get').toUpperCase()
    const url = config.url ?? ''
    const headers: Record<string, string> = {}
    const h = AxiosHeaders.from(config.headers)
    for (const [k, v] of Object.entries(h.toJSON())) headers[k.toLowerCase()] = String(v)
    const entry: Sent = {
      method,
      url,
      params: config.params as Record<string, string> | undefined,
      body: typeof config.data === 'string' ? JSON.parse(config.data) : config.data,
      headers,
    }
    sent.push(entry)
    const handler = routes[`${method} ${url}`]
    const answer: Answer = handler === undefined ? { status: 404, error: { code: 'not_found', message: `no mock for ${method} ${url}` } } : typeof handler === 'function' ? handler(entry) : handler
    const status = answer.status ?? (answer.error ? 400 : 200)
    const data = answer.error
      ? { status: 'error', error: answer.error, meta: { version: 2, request_id: 'test' } }
      : { status: 'success', data: answer.data ?? {}, meta: { version: 2, ...(answer.meta ?? {}) } }
    const response = { data, status, statusText: String(status), headers: answer.headers ?? {}, config }
    if (status >= 400) throw new AxiosError(`HTTP ${status}`, String(status), config, null, response)
    return response
  }
  http.defaults.adapter = adapter
  return { sent }
}

export const ADMIN_SCOPES = [
  'audit:read', 'clients:admin', 'dataplane:admin', 'flows:read', 'roles:admin', 'rules:write', 'stats:read', 'teams:admin', 'users:admin',
]
export const VIEWER_SCOPES = ['alerts:read', 'captures:read', 'dataplane:read', 'flows:read', 'rules:read', 'stats:read']

export function meAnswer(scopes: string[], extra: Record<string, unknown> = {}) {
  return { data: { kind: 'session', subject: 'user:1', user_id: 1, client_id: null, email: 'someone@example.com', scopes, teams: [], node_scopes: {}, ...extra } }
}
