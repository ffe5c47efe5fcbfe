import { expect, test } from '@playwright/test'
import { loginAsAdmin, parseRate, stackState } from './support'

test('the default admin logs in and sees the chart numbers change', async ({ page, request }) => {
  const { traffic } = await stackState(request)
  await loginAsAdmin(page)
  await expect(page).toHaveURL(/\/dashboard$/)
  await expect(page.getByTestId('live-indicator')).toHaveText('Live', { timeout: 20_000 })
  if (!traffic) {
    await expect(page.getByText('No dataplane has reported yet')).toBeVisible()
    test.info().annotations.push({ type: 'note', description: 'no root: no demo traffic, the empty state was checked' })
    return
  }
  const value = page.getByTestId('chart-pps-value')
  await expect(value).not.toHaveText('no data yet', { timeout: 30_000 })
  const seen = new Set<string>()
  await expect(async () => {
    seen.add((await value.textContent()) ?? '')
    expect(seen.size).toBeGreaterThan(2)
  }).toPass({ timeout: 30_000, intervals: [900] })
  const rates = [...seen].map(parseRate).filter((n) => n > 0)
  expect(rates.length).toBeGreaterThan(1)
  await expect(page.locator('canvas').first()).toBeVisible() // uPlot drew
  await expect(page.getByTestId('stat-tiles')).toContainText('pkt/s')
})
