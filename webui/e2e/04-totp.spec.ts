import { expect, test } from '@playwright/test'
import { createUser, login, logout, totp, unique } from './support'

test('enrol TOTP with the QR page, then log in with a code', async ({ page, request }) => {
  const email = unique('totp')
  const password = 'Totp-user-passw0rd'
  await createUser(request, email, password, ['viewer'])
  await login(page, email, password)
  await expect(page).toHaveURL(/\/dashboard/)
  await page.goto('/profile?tab=2fa')
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click()
  await expect(page.getByRole('img', { name: 'TOTP enrolment QR code' })).toBeVisible()
  const secret = (await page.getByTestId('totp-secret').textContent()) ?? ''
  expect(secret).toMatch(/^[A-Z2-7]{16,}$/)
  await page.getByLabel('Code from the app').fill(totp(secret))
  await page.getByRole('button', { name: 'Verify and turn on' }).click()
  const codes = page.getByTestId('recovery-codes')
  await expect(codes).toContainText('will not be shown again')
  await expect(codes.locator('li')).toHaveCount(10)
  await page.getByRole('button', { name: 'Done' }).click()
  await expect(page.getByTestId('recovery-codes')).toHaveCount(0)
  await logout(page)

  await login(page, email, password)
  const code = page.getByLabel('Authentication code')
  await expect(code).toBeVisible()
  await code.fill(totp(secret, Date.now() + 30_000)) // next step: a code never used before
  await page.getByRole('button', { name: 'Verify and sign in' }).click()
  await expect(page).toHaveURL(/\/dashboard/)
  await expect(page.getByRole('navigation', { name: 'Main' })).toContainText(email)
})
