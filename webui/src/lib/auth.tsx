/**
 * The auth context: who is logged in (GET /me, held by react-query), login with the
 * browser session (HttpOnly cookie + CSRF cookie, never a token in storage), the TOTP
 * step, logout, and the "change your password" flag from the login answer.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, type ReactNode } from 'react'
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { api, ApiError, onUnauthorized } from './api-client'
import { can, canSomewhere, nodesFor } from './scopes'

export interface Me {
  kind: 'user' | 'api_key' | string
  subject: string
  user_id: number | null
  client_id: number | null
  email: string | null
  scopes: string[]
  teams: number[]
  node_scopes?: Record<string, string[]>
}

export interface LoginAnswer {
  password_change_required?: boolean
}

export interface LoginInput {
  email: string
  password: string
  remember: boolean
  totpCode?: string
}

/** sessionStorage flag (not a secret): survives a reload, ends with the tab. */
const PASSWORD_FLAG = 'floe.passwordChangeRequired'

export const meQueryKey = ['me'] as const
const isMeQuery = (key: readonly unknown[]) => key.length === 1 && key[0] === 'me'

export async function fetchMe(): Promise<Me | null> {
  try {
    return (await api.get<Me>('/me')).data
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null
    throw error
  }
}

interface AuthValue {
  me: Me | null
  isLoading: boolean
  error: unknown
  passwordChangeRequired: boolean
  login: (input: LoginInput) => Promise<LoginAnswer>
  logout: () => Promise<void>
  passwordChanged: () => void
  can: (scope: string) => boolean
  canSomewhere: (scope: string) => boolean
  nodesFor: (scope: string) => string[] | null
}

const AuthContext = createContext<AuthValue | null>(null)

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient()
  const meQuery = useQuery({ queryKey: meQueryKey, queryFn: fetchMe, staleTime: 60_000 })
  const me = meQuery.data ?? null

  useEffect(
    () =>
      onUnauthorized(() => {
        queryClient.setQueryData(meQueryKey, null)
      }),
    [queryClient],
  )

  const login = useCallback(
    async ({ email, password, remember, totpCode }: LoginInput) => {
      const body: Record<string, unknown> = { email, password, session: true, remember }
      if (totpCode) body.totp_code = totpCode
      const answer = (await api.post<LoginAnswer>('/auth/login', body)).data
      if (answer.password_change_required) sessionStorage.setItem(PASSWORD_FLAG, '1')
      else sessionStorage.removeItem(PASSWORD_FLAG)
      queryClient.removeQueries({ predicate: (q) => !isMeQuery(q.queryKey) })
      await queryClient.fetchQuery({ queryKey: meQueryKey, queryFn: fetchMe, staleTime: 0 })
      return answer
    },
    [queryClient],
  )

  const logout = useCallback(async () => {
    try {
      await api.post('/auth/logout', {})
    } catch {
      // already logged out (401) or the server is down: forget the session locally anyway
    }
    sessionStorage.removeItem(PASSWORD_FLAG)
    // Keep the ['me'] query itself (the provider observes it) and set it to "nobody";
    // drop every other cached answer so the next user sees nothing of this one's.
    queryClient.removeQueries({ predicate: (q) => !isMeQuery(q.queryKey) })
    queryClient.setQueryData(meQueryKey, null)
  }, [queryClient])

  // A password change gives the account a new security stamp: every session, this one
  // included, has ended on the server. Forget it here too (the login page says why).
  const passwordChanged = useCallback(() => {
    sessionStorage.removeItem(PASSWORD_FLAG)
    queryClient.removeQueries({ predicate: (q) => !isMeQuery(q.queryKey) })
    queryClient.setQueryData(meQueryKey, null)
  }, [queryClient])

  const value = useMemo<AuthValue>(
    () => ({
      me,
      isLoading: meQuery.isLoading,
      error: meQuery.error,
      passwordChangeRequired: me !== null && sessionStorage.getItem(PASSWORD_FLAG) === '1',
      login,
      logout,
      passwordChanged,
      can: (scope) => can(me, scope),
      canSomewhere: (scope) => canSomewhere(me, scope),
      nodesFor: (scope) => nodesFor(me, scope),
    }),
    [me, meQuery.isLoading, meQuery.error, login, logout, passwordChanged],
  )
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext)
  if (!value) throw new Error('useAuth outside <AuthProvider>')
  return value
}
