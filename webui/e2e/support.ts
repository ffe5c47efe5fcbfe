/** Helpers for the Playwright suite: log in through the UI, the admin API for set-up,
 *  TOTP codes (RFC 6238), and the stack's control endpoint (restart the control plane). */
import { createHmac } from 'node:crypto'
import { expect, type APIRequestContext, type Page } from '@playwright/test'

export const ADMIN = { email: 'admin@localhost.local', password: 'admin123' }
const CONTROL = process.env.FLOE_E2E_CONTROL ?? 'http://127.0.0.1:21004'

export interface StackState {
  traffic: boolean
  restarts: number
  http_port: number
}

export async function stackState(request: APIRequestContext): Promise<StackState> {
  return (await (await request.get(`${CONTROL}/state`)).json()) as StackState
}

export async function restartControlPlane(request: APIRequestContext, downSeconds: number): Promise<StackState> {
  const answer = await request.post(`${CONTROL}/restart?down=${downSeconds}`, { timeout: 90_000 })
  expect(answer.ok()).toBeTruthy()
  return (await answer.json()) as StackState
}

export async function login(page: Page, email: string, password: string) {
  await page.goto('/login')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Login' }).click()
}

export async function loginAsAdmin(page: Page) {
  await login(page, ADMIN.email, ADMIN.password)
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible()
}

export async function logout(page: Page) {
  await page.getByRole('button', { name: 'Log out' }).click()
  await expect(page).toHaveURL(/\/login/)
}

/** A bearer token for set-up through the API (the tests themselves use the browser). */
export async function adminToken(request: APIRequestContext): Promise<string> {
  const answer = await request.post('/api/v2/auth/login', { data: ADMIN })
  expect(answer.status()).toBe(200)
  return ((await answer.json()) as { data: { access_token: string } }).data.access_token
}

export async function createUser(request: APIRequestContext, email: string, password: string, roles: string[]) {
  const token = await adminToken(request)
  const answer = await request.post('/api/v2/users', { data: { email, password, roles }, headers: { Authorization: `Bearer ${token}` } })
  expect(answer.status(), await answer.text()).toBe(201)
}

export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}@example.com`
}

function base32(secret: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  const bytes = bits.match(/.{8}/g) ?? []
  return Buffer.from(bytes.map((b) => parseInt(b, 2)))
}

/** The RFC 6238 code (SHA-1, 30 s, 6 digits) at `atMs`. */
export function totp(secret: string, atMs = Date.now()): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(atMs / 1000 / 30)))
  const mac = createHmac('sha1', base32(secret)).update(counter).digest()
  const offset = (mac[mac.length - 1] ?? 0) & 0xf
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000
  return value.toString().padStart(6, '0')
}

/** The number in a formatted value ("2.39 Mb/s" → 2.39e6), for "did it change" checks. */
export function parseRate(text: string): number {
  const m = /([\d.]+)\s*([KMGT]?)/.exec(text)
  if (!m) return Number.NaN
  const scale = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] as '' | 'K' | 'M' | 'G' | 'T'] ?? 1
  return Number(m[1]) * scale
}
