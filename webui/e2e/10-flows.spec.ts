import { expect, test } from '@playwright/test'
import { loginAsAdmin, restartControlPlane, stackState } from './support'

test('a filter the server refuses shows its reason on the chip', async ({ page }) => {
  await loginAsAdmin(page)
  await page.goto('/flows')
  await expect(page.getByTestId('flows-status')).toHaveAttribute('data-status', 'live', { timeout: 20_000 })
  await page.getByLabel('Filter', { exact: true }).selectOption('port')
  await page.getByLabel('Value').fill('70000')
  await page.getByRole('button', { name: 'Add filter' }).click()
  // The subscription's error names filter.allow[0].port: it lands on the port chip.
  await expect(page.getByTestId('chip-error-port')).toContainText('70000 is not a port')
  await expect(page.getByTestId('flows-status')).toHaveAttribute('data-status', 'refused')
  await page.getByRole('button', { name: 'Remove filter port = 70000' }).click()
  await page.getByLabel('Filter', { exact: true }).selectOption('proto')
  await page.getByLabel('Value').fill('nonsense')
  await page.getByRole('button', { name: 'Add filter' }).click()
  await expect(page.getByTestId('chip-error-proto')).toContainText("'nonsense' is not a protocol")
  await page.getByRole('button', { name: 'Remove filter proto = nonsense' }).click()
  await expect(page.getByTestId('flows-status')).toHaveAttribute('data-status', 'live')
  await expect(page.getByTestId('chip-error-proto')).toHaveCount(0)
})

test('the flows view resumes after its last cursor when the control plane comes back', async ({ page, request }) => {
  test.skip(!(await stackState(request)).traffic, 'needs root for the demo dataplane and traffic')
  const subscribes: { filter: Record<string, unknown> }[] = []
  page.on('websocket', (ws) =>
    ws.on('framesent', (f) => {
      const m = JSON.parse(String(f.payload)) as { type: string; filter: Record<string, unknown> }
      if (m.type === 'subscribe') subscribes.push(m)
    }),
  )
  await loginAsAdmin(page)
  await page.goto('/flows')
  await expect(page.getByTestId('flows-status')).toHaveAttribute('data-status', 'live', { timeout: 20_000 })
  await expect(page.getByTestId('flow-src').first()).toBeVisible({ timeout: 30_000 })
  expect(subscribes.pop()?.filter).toEqual({ number: 200 }) // the table's size, no cursor yet
  const status = page.getByTestId('flows-status')

  const restarting = restartControlPlane(request, 2) // SIGKILL, 2 s down, start again
  await expect(status).toHaveAttribute('data-status', 'waiting', { timeout: 15_000 })
  await restarting
  await expect(status).toHaveAttribute('data-status', 'live', { timeout: 45_000 })
  // Resubscribed after the newest cursor it had, not "the newest 200" again.
  const resume = subscribes.pop()?.filter ?? {}
  expect(typeof resume.after).toBe('number')
  expect(resume.number).toBeUndefined()
  // A new run cannot know what the old one held: the server says so, and the page shows it.
  await expect(page.getByTestId('flows-gap')).toContainText('earlier run of the control plane', { timeout: 30_000 })
  // And the table keeps following (every column but "last seen", which counts by itself).
  const rows = () => page.getByTestId('flows-body').evaluate((body) => Array.from((body as HTMLTableSectionElement).rows, (r) => Array.from(r.cells).slice(1).map((c) => c.innerText).join('|')).join('\n'))
  const before = await rows()
  await expect(async () => expect(await rows()).not.toBe(before)).toPass({ timeout: 30_000 })
})
