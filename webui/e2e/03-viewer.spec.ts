import { expect, test } from '@playwright/test'
import { login, loginAsAdmin, logout, unique } from './support'

test('an admin creates a viewer, who finds no write controls anywhere', async ({ page }) => {
  const email = unique('viewer')
  const password = 'Viewer-passw0rd-long'
  await loginAsAdmin(page)
  await page.getByRole('link', { name: 'Users' }).click()
  await page.getByRole('button', { name: 'Create user' }).click()
  const dialog = page.getByRole('dialog', { name: 'Create user' })
  await dialog.getByLabel('Email').fill(email)
  await dialog.getByLabel('Initial password').fill(password)
  await expect(dialog.getByLabel('viewer')).toBeChecked()
  await dialog.getByRole('button', { name: 'Create user' }).click()
  await expect(page.getByTestId(`user-${email}`)).toBeVisible()
  await logout(page)

  await login(page, email, password)
  await expect(page).toHaveURL(/\/dashboard/)
  const nav = page.getByRole('navigation', { name: 'Main' })
  await expect(nav.getByRole('link', { name: 'Rules' })).toBeVisible()
  await expect(nav.getByText('Administration')).toHaveCount(0)
  const writeControls = /^(Add rule|Create user|Create role|Create team|Create API client)$|^(Edit|Delete|Revoke|Rotate) /
  for (const path of ['/dashboard', '/flows', '/nodes', '/rules', '/rules?tab=acks']) {
    await page.goto(path)
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible()
    await expect(page.getByRole('button', { name: writeControls })).toHaveCount(0)
    await expect(page.getByLabel(/Default action/)).toHaveCount(0)
  }
  for (const path of ['/admin/users', '/admin/roles', '/admin/clients', '/admin/audit']) {
    await page.goto(path)
    await expect(page.getByRole('heading', { name: 'No access' })).toBeVisible()
  }
})
