import { describe, expect, it } from 'vitest'
import { mockApi } from '@/testing/mock-api'
import { api, ApiError, fieldErrorMap, onUnauthorized } from './api-client'

describe('api client', () => {
  it('uses the v2 base and sends the CSRF cookie as a header on unsafe methods only', async () => {
    document.cookie = 'floe_csrf=tok123; path=/'
    const { sent } = mockApi({ 'GET /rules': { data: { rules: [] } }, 'PUT /rules': { data: {} } })
    await api.get('/rules')
    await api.put('/rules', { rules: [] })
    expect(sent[0]?.headers['x-csrf-token']).toBeUndefined()
    expect(sent[1]?.headers['x-csrf-token']).toBe('tok123')
    document.cookie = 'floe_csrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/'
  })

  it('turns the error envelope into ApiError with Retry-After', async () => {
    mockApi({ 'POST /auth/login': { status: 429, error: { code: 'account_locked', message: 'Locked' }, headers: { 'retry-after': '900' } } })
    const error = await api.post('/auth/login', {}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 429, code: 'account_locked', message: 'Locked', retryAfter: 900 })
  })

  it('maps pydantic details to fields', async () => {
    mockApi({ 'POST /users': { status: 422, error: { code: 'validation_error', message: 'bad', details: [{ loc: ['email'], msg: 'not an email' }] } } })
    const error = await api.post('/users', {}).catch((e: unknown) => e)
    expect(fieldErrorMap(error)).toEqual({ email: 'not an email' })
  })

  it('tells the auth layer about a 401 outside /auth', async () => {
    let told = 0
    const off = onUnauthorized(() => (told += 1))
    mockApi({ 'GET /nodes': { status: 401, error: { code: 'unauthenticated', message: 'no' } }, 'POST /auth/login': { status: 401, error: { code: 'invalid_credentials', message: 'no' } } })
    await api.get('/nodes').catch(() => undefined)
    await api.post('/auth/login', {}).catch(() => undefined)
    off()
    expect(told).toBe(1)
  })

  it('reports an unreachable server as network_error', async () => {
    const { http } = await import('./api-client')
    http.defaults.adapter = async () => {
      const { AxiosError } = await import('axios')
      throw new AxiosError('Network Error', 'ERR_NETWORK')
    }
    await expect(api.get('/me')).rejects.toMatchObject({ code: 'network_error', status: 0 })
  })
})
