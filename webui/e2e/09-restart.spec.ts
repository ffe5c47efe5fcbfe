import { expect, test } from '@playwright/test'
import { loginAsAdmin, restartControlPlane, stackState } from './support'

test('kill and restart the control plane: the dashboard reconnects by itself', async ({ page, request }) => {
  const { traffic, restarts } = await stackState(request)
  await loginAsAdmin(page)
  const indicator = page.getByTestId('live-indicator')
  await expect(indicator).toHaveText('Live', { timeout: 20_000 })
  const restarting = restartControlPlane(request, 4) // SIGKILL, 4 s down, start again
  await expect(indicator).toHaveAttribute('data-status', 'reconnecting', { timeout: 15_000 })
  await expect(indicator).toContainText(/Reconnecting/)
  expect((await restarting).restarts).toBe(restarts + 1)
  await expect(indicator).toHaveText('Live', { timeout: 30_000 }) // backoff is capped at 15 s
  await expect(page).toHaveURL(/\/dashboard/) // same session: no login page
  if (traffic) {
    const value = page.getByTestId('chart-pps-value')
    const before = await value.textContent()
    await expect(async () => expect(await value.textContent()).not.toBe(before)).toPass({ timeout: 30_000 })
  }
})
