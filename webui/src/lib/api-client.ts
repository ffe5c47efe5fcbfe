/**
 * The one API client: the v2 base path, the browser session cookie, the CSRF header on
 * unsafe methods, and the error envelope turned into `ApiError` (code, message, details,
 * Retry-After). Nothing here stores a credential: the session cookie is HttpOnly and the
 * CSRF token is read from its own cookie on every request.
 */
import axios, { AxiosError, type AxiosRequestConfig } from 'axios'

export const API_BASE = '/api/v2'
export const CSRF_COOKIE = 'floe_csrf'
export const CSRF_HEADER = 'X-CSRF-Token'

export interface Meta {
  version?: number
  timestamp?: string
  request_id?: string
  offset?: number
  limit?: number
  total?: number
  count?: number
  [key: string]: unknown
}

export interface Envelope<T> {
  status: 'success'
  data: T
  meta: Meta
}

export interface FieldError {
  loc: (string | number)[]
  msg: string
  type?: string
}

/** An answer in the error envelope (or a transport failure, code `network_error`). */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly details: unknown
  readonly retryAfter: number | null
  readonly requestId: string | null

  constructor(
    status: number,
    code: string,
    message: string,
    details: unknown = null,
    retryAfter: number | null = null,
    requestId: string | null = null,
  ) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
    this.retryAfter = retryAfter
    this.requestId = requestId
  }

  /** Pydantic-style errors from a 422 `validation_error` (`details` is their list). */
  get fieldErrors(): FieldError[] {
    if (!Array.isArray(this.details)) return []
    return this.details.filter(
      (d): d is FieldError =>
        typeof d === 'object' && d !== null && Array.isArray((d as FieldError).loc),
    )
  }
}

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=')
    if (key === name) return decodeURIComponent(rest.join('='))
  }
  return null
}

function parseRetryAfter(value: unknown): number | null {
  if (typeof value !== 'string' || value === '') return null
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds)
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : Math.max(0, Math.round((at - Date.now()) / 1000))
}

/** Map any axios failure to an ApiError taken from the envelope when there is one. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  if (error instanceof AxiosError) {
    const response = error.response
    if (!response) {
      return new ApiError(0, 'network_error', 'The control plane did not answer. Is it running?')
    }
    const body = response.data as { error?: { code?: string; message?: string; details?: unknown }; meta?: Meta }
    const retryAfter = parseRetryAfter(response.headers['retry-after'])
    const requestId = body?.meta?.request_id ?? null
    if (body && typeof body === 'object' && body.error && typeof body.error.code === 'string') {
      return new ApiError(
        response.status,
        body.error.code,
        body.error.message ?? body.error.code,
        body.error.details ?? null,
        retryAfter,
        requestId,
      )
    }
    return new ApiError(response.status, 'http_error', `HTTP ${response.status}`, null, retryAfter)
  }
  return new ApiError(0, 'client_error', error instanceof Error ? error.message : String(error))
}

type UnauthorizedListener = () => void
const unauthorizedListeners = new Set<UnauthorizedListener>()

/** Called when any request answers 401 (the session ended): the auth layer logs out. */
export function onUnauthorized(listener: UnauthorizedListener): () => void {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

const SAFE = new Set(['get', 'head', 'options'])

export const http = axios.create({
  baseURL: API_BASE,
  withCredentials: true,
  timeout: 20_000,
  headers: { Accept: 'application/json' },
})

http.interceptors.request.use((config) => {
  const method = (config.method ?? 'get').toLowerCase()
  if (!SAFE.has(method)) {
    const token = readCookie(CSRF_COOKIE)
    if (token) config.headers.set(CSRF_HEADER, token)
  }
  return config
})

http.interceptors.response.use(
  (response) => response,
  (error: unknown) => {
    const apiError = toApiError(error)
    const url = error instanceof AxiosError ? (error.config?.url ?? '') : ''
    if (apiError.status === 401 && !url.startsWith('/auth/')) {
      for (const listener of unauthorizedListeners) listener()
    }
    return Promise.reject(apiError)
  },
)

export interface RequestOptions {
  params?: Record<string, string | number | boolean | undefined | null>
  signal?: AbortSignal
}

function cleanParams(params: RequestOptions['params']): Record<string, string> | undefined {
  if (!params) return undefined
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') out[key] = String(value)
  }
  return out
}

async function request<T>(config: AxiosRequestConfig): Promise<Envelope<T>> {
  const response = await http.request<Envelope<T>>(config)
  return response.data
}

export const api = {
  get: <T>(url: string, options: RequestOptions = {}) =>
    request<T>({ method: 'GET', url, params: cleanParams(options.params), signal: options.signal }),
  post: <T>(url: string, data?: unknown, options: RequestOptions = {}) =>
    request<T>({ method: 'POST', url, data: data ?? {}, params: cleanParams(options.params), signal: options.signal }),
  put: <T>(url: string, data?: unknown) => request<T>({ method: 'PUT', url, data: data ?? {} }),
  patch: <T>(url: string, data?: unknown) => request<T>({ method: 'PATCH', url, data: data ?? {} }),
  delete: <T>(url: string, data?: unknown) => request<T>({ method: 'DELETE', url, data }),
}

/** Human text for an error: the envelope's message, with what to do for the common codes. */
export function describeError(error: unknown): string {
  const e = toApiError(error)
  switch (e.code) {
    case 'insufficient_scope':
      return `${e.message} (your role does not allow this)`
    case 'csrf_failed':
      return 'Your session token is missing or stale: reload the page and try again.'
    case 'database_unavailable':
    case 'unavailable':
      return `${e.message}. Retrying shortly usually helps.`
    default:
      return e.message
  }
}

/** A 422's pydantic errors keyed by field name (the last `loc` element), for forms. */
export function fieldErrorMap(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {}
  const out: Record<string, string> = {}
  for (const fe of error.fieldErrors) {
    const name = fe.loc.filter((p) => typeof p === 'string' && p !== 'body').pop()
    if (typeof name === 'string' && !out[name]) out[name] = fe.msg
  }
  return out
}
