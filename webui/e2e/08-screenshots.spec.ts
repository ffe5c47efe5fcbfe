/** Screenshots of the main pages for docs/screenshots (FLOE_SCREENSHOTS=1 writes them;
 *  otherwise they go to test-results only). Small PNGs: 1280×800 viewport, no full page. */
import { expect, test } from '@playwright/test'
import { adminToken, loginAsAdmin } from './support'

const target = process.env.FLOE_SCREENSHOTS === '1' ? '../docs/screenshots' : 'test-results/screenshots'

const SAMPLE_RULES = {
  default_action: 'allow',
  rules: [
    { id: 1, action: 'deny', src: '10.77.0.12/32' },
    { id: 2, action: 'deny', port: 23, proto: 'tcp' },
    { id: 3, action: 'deny', dst: '2001:db8::/32' },
  ],
}

test('screenshots of the main pages', async ({ page, request }) => {
  const auth = { Authorization: `Bearer ${await adminToken(request)}` }
  expect((await request.put('/api/v2/rules', { data: SAMPLE_RULES, headers: auth })).status()).toBe(200)
  await page.setViewportSize({ width: 1280, height: 800 })
  await page.goto('/login')
  await expect(page.getByRole('heading', { name: 'Sign in to Floe' })).toBeVisible()
  await page.screenshot({ path: `${target}/login.png` })
  await loginAsAdmin(page)
  await page.waitForTimeout(8000) // a few seconds of live history in the charts
  for (const [name, path] of [['dashboard', '/dashboard'], ['flows', '/flows'], ['nodes', '/nodes'], ['rules', '/rules'], ['users', '/admin/users'], ['clients', '/admin/clients'], ['profile-2fa', '/profile?tab=2fa']] as const) {
    if (path !== '/dashboard') await page.goto(path)
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible()
    await page.waitForTimeout(name === 'dashboard' ? 500 : 2500)
    await page.screenshot({ path: `${target}/${name}.png` })
  }
  expect((await request.put('/api/v2/rules', { data: { default_action: 'allow', rules: [] }, headers: auth })).status()).toBe(200)
})
