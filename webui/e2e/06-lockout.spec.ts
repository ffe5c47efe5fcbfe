import { expect, test } from '@playwright/test'
import { createUser, unique } from './support'

// 429 `account_locked` or `rate_limited` (lockout per account and source address): both are
// a lockout to the person at the keyboard, with the wait from Retry-After.
const LOCKED = /locked|Too many/

test('five wrong passwords show the lockout message with the wait', async ({ page, request }) => {
  const email = unique('locked')
  await createUser(request, email, 'Right-passw0rd-here', ['viewer'])
  await page.goto('/login')
  await page.getByLabel('Email').fill(email)
  const alert = page.locator('#login-error')
  for (let i = 1; i <= 5; i += 1) {
    await page.getByLabel('Password').fill(`wrong-${i}`)
    await page.getByRole('button', { name: 'Login' }).click()
    await expect(alert).toBeVisible()
    if (LOCKED.test((await alert.textContent()) ?? '')) break
    await expect(alert).toContainText('Wrong email or password')
  }
  if (!LOCKED.test((await alert.textContent()) ?? '')) {
    // The fifth failure locked the account; the next attempt (even the right password) is told.
    await page.getByLabel('Password').fill('Right-passw0rd-here')
    await page.getByRole('button', { name: 'Login' }).click()
  }
  await expect(alert).toContainText(LOCKED)
  await expect(page.getByTestId('lockout-wait')).toContainText(/Try again in \d+ min/)
  await expect(page.getByRole('button', { name: 'Login' })).toBeDisabled()
})
