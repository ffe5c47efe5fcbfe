/** axe-core on every page (WCAG 2.x A/AA rules): no serious or critical violation; and
 *  nothing wider than the window at 1280 px or on a 768 px tablet. */
import AxeBuilder from '@axe-core/playwright'
import { expect, test, type Page } from '@playwright/test'
import { loginAsAdmin } from './support'

const PAGES = ['/dashboard', '/flows', '/nodes', '/rules', '/rules?tab=acks', '/admin/users', '/admin/roles', '/admin/teams', '/admin/clients', '/admin/audit', '/profile', '/profile?tab=password', '/profile?tab=2fa', '/profile?tab=sessions']

async function scan(page: Page, label: string) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze()
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  const summary = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)
  expect(summary, `${label}: serious/critical axe violations`).toEqual([])
  return result.passes.length
}

test('login, forgot-password and reset pages pass axe', async ({ page }) => {
  for (const path of ['/login', '/forgot-password', '/reset-password?token=x']) {
    await page.goto(path)
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible()
    await scan(page, path)
  }
})

test('every dashboard page passes axe, under the served CSP with no violation', async ({ page }) => {
  const violations: string[] = []
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text())
  })
  // Chromium logs every refused resource ("Refused to … Content Security Policy"); the
  // listener catches the rest (it is injected by the test harness, outside the page's CSP).
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`Content Security Policy: ${e.violatedDirective} ${e.blockedURI}`)))
  const first = await page.goto('/login')
  expect(first?.headers()['content-security-policy']).toContain("script-src 'self'")
  await loginAsAdmin(page)
  for (const path of PAGES) {
    await page.goto(path)
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible()
    await page.waitForTimeout(800) // let live data and queries render
    await scan(page, path)
  }
  expect(violations).toEqual([])
})

test('dialogs pass axe too (rule editor, create user, create API client)', async ({ page }) => {
  await loginAsAdmin(page)
  for (const [path, button] of [['/rules', 'Add rule'], ['/admin/users', 'Create user'], ['/admin/clients', 'Create API client']] as const) {
    await page.goto(path)
    await page.getByRole('button', { name: button }).click()
    await expect(page.getByRole('dialog')).toBeVisible()
    await scan(page, `${path} dialog`)
    await page.keyboard.press('Escape')
    await expect(page.getByRole('dialog')).toHaveCount(0)
  }
})

for (const width of [1280, 768]) {
  test(`usable at ${width} px: no page wider than the window, sidebar reachable`, async ({ page }) => {
    await page.setViewportSize({ width, height: 900 })
    await loginAsAdmin(page)
    for (const path of PAGES) {
      await page.goto(path)
      await expect(page.getByRole('heading', { level: 1 })).toBeVisible()
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      expect(overflow, `${path} at ${width}px`).toBeLessThanOrEqual(0)
    }
    await expect(page.getByRole('link', { name: 'Dashboard' })).toBeVisible()
  })
}

test('keyboard: skip link, visible focus, tabs move with arrow keys', async ({ page }) => {
  await loginAsAdmin(page)
  await page.goto('/profile')
  await expect(page.getByRole('heading', { name: 'Profile', level: 1 })).toBeVisible()
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
  await page.keyboard.press('Tab')
  const skip = page.getByRole('link', { name: 'Skip to content' })
  await expect(skip).toBeFocused()
  const outline = await skip.evaluate((el) => getComputedStyle(el).outlineStyle + getComputedStyle(el).boxShadow)
  expect(outline).not.toBe('nonenone')
  await page.getByRole('tab', { name: 'Profile' }).focus()
  await page.keyboard.press('ArrowRight')
  await expect(page.getByRole('tab', { name: 'Password' })).toBeFocused()
  await expect(page.getByRole('tab', { name: 'Password' })).toHaveAttribute('aria-selected', 'true')
})

test('prefers-reduced-motion turns the animations off', async ({ page }) => {
  await page.emulateMedia({ reducedMotion: 'reduce' })
  await loginAsAdmin(page)
  await page.goto('/admin/audit')
  const duration = await page.evaluate(() => {
    const el = document.createElement('div')
    el.className = 'skeleton'
    document.body.appendChild(el)
    return getComputedStyle(el).animationDuration
  })
  expect(parseFloat(duration)).toBeLessThan(0.001)
})
