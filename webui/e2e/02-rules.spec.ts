import { expect, test, type Page } from '@playwright/test'
import { loginAsAdmin, stackState } from './support'

// floe demo's heavy hitters: 10.77.0.10 (denied here) and 10.77.0.11 (the control).
const DENIED = '10.77.0.10'
const CONTROL = '10.77.0.11'

interface FlowRow { src: string; packets: number; verdict: string; rule_id?: number }

/** Packets the flows of `ip` carried, of the given verdicts: forwarded traffic, or the
 *  dropped-packet records (which name the rule that dropped them). */
async function flowsOf(page: Page, ip: string, verdicts: string): Promise<FlowRow[]> {
  const answer = await page.request.get(`/api/v2/flows?ip=${ip}&verdict=${verdicts}&limit=1000`)
  return ((await answer.json()) as { data: FlowRow[] }).data.filter((f) => f.src === ip)
}

async function packetsOf(page: Page, ip: string, verdicts = 'forwarded,unknown'): Promise<number> {
  return (await flowsOf(page, ip, verdicts)).reduce((s, f) => s + f.packets, 0)
}

/** The flows table's rows, every column but "last seen" (a relative time, which keeps counting). */
const rowsOf = (page: Page) => page.getByTestId('flows-body').evaluate((body) => Array.from((body as HTMLTableSectionElement).rows, (r) => Array.from(r.cells).slice(1).map((c) => c.innerText).join('|')).sort())

test('a deny rule: its hit counter rises while that traffic stops in the flows view (and shows up dropped, by that rule)', async ({ page, request }) => {
  test.skip(!(await stackState(request)).traffic, 'needs root for the demo dataplane and traffic')
  // The flows view follows the WebSocket flow subscription: what the page sends on the stream,
  // and every GET /flows it makes (there should be none while following).
  const frames: Record<string, unknown>[] = []
  page.on('websocket', (ws) => ws.on('framesent', (f) => frames.push(JSON.parse(String(f.payload)) as Record<string, unknown>)))
  const polls: string[] = []
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/v2/flows') polls.push(r.url())
  })
  await loginAsAdmin(page)
  await page.getByRole('link', { name: 'Rules' }).click()
  await page.getByRole('button', { name: 'Add rule' }).click()
  const dialog = page.getByRole('dialog', { name: 'Add rule' })
  await dialog.getByLabel('Rule id').fill('4242')
  await dialog.getByLabel('Source CIDR').fill(`${DENIED}/32`)
  await dialog.getByRole('button', { name: 'Save rule' }).click()
  await expect(dialog).toBeHidden()
  const hits = page.getByTestId('rule-hits-4242')
  await expect(hits).toBeVisible()
  let first = 0
  await expect(async () => {
    first = Number((await hits.textContent())?.replace(/\D/g, ''))
    expect(first).toBeGreaterThan(0)
  }).toPass({ timeout: 30_000 })
  await expect(async () => expect(Number((await hits.textContent())?.replace(/\D/g, ''))).toBeGreaterThan(first)).toPass({ timeout: 20_000 })
  await page.getByRole('tab', { name: 'Acknowledgements' }).click()
  await expect(page.getByText('up to date')).toBeVisible({ timeout: 20_000 })

  // The flows view, filtered by the denied source: a subscription for that address. Its
  // forwarded traffic stops while the control's goes on; what the rule drops comes up as
  // flows of their own, with the verdict "dropped" and the rule.
  await page.getByRole('link', { name: 'Flows' }).click()
  await page.getByLabel('Value').fill(DENIED)
  await page.getByRole('button', { name: 'Add filter' }).click()
  await expect(page.getByRole('button', { name: `Remove filter ip = ${DENIED}` })).toBeVisible()
  await expect(page.getByTestId('flows-status')).toHaveAttribute('data-status', 'live')
  expect(frames.filter((f) => f.type === 'subscribe').pop()).toMatchObject({ topic: 'flows', filter: { allow: [{ ip: [DENIED] }] } })
  await page.waitForTimeout(3000) // flows already in flight when the rule landed settle
  expect((await rowsOf(page)).length).toBeGreaterThan(0)
  const deniedBefore = await packetsOf(page, DENIED)
  const droppedBefore = await packetsOf(page, DENIED, 'dropped')
  const controlBefore = await packetsOf(page, CONTROL)
  await page.waitForTimeout(6000) // dozens of dataplane batches (one every 100 ms)
  expect(await packetsOf(page, DENIED)).toBe(deniedBefore)
  expect(await packetsOf(page, CONTROL)).toBeGreaterThan(controlBefore)
  expect(await packetsOf(page, DENIED, 'dropped')).toBeGreaterThan(droppedBefore)
  expect(new Set((await flowsOf(page, DENIED, 'dropped')).map((f) => f.rule_id))).toEqual(new Set([4242]))

  // The control source, followed live in the same view: its rows change without a reload.
  await page.getByRole('button', { name: `Remove filter ip = ${DENIED}` }).click()
  await page.getByLabel('Value').fill(CONTROL)
  await page.getByRole('button', { name: 'Add filter' }).click()
  await expect(page.getByTestId('flows-status')).toHaveAttribute('data-status', 'live')
  expect(frames.filter((f) => f.type === 'subscribe').pop()).toMatchObject({ filter: { allow: [{ ip: [CONTROL] }] } })
  expect(frames.filter((f) => f.type === 'unsubscribe').length).toBeGreaterThan(0) // the old filter's subscription ended
  await expect(page.getByTestId('flow-src').first()).toBeVisible({ timeout: 15_000 })
  const moving = await rowsOf(page)
  await expect(async () => expect(await rowsOf(page)).not.toEqual(moving)).toPass({ timeout: 15_000 })
  expect(polls).toEqual([]) // following never polled GET /flows

  // Clean up for the tests after this one.
  await page.getByRole('link', { name: 'Rules' }).click()
  await page.getByRole('button', { name: 'Delete rule 4242' }).click()
  await page.getByRole('dialog', { name: 'Delete rule' }).getByRole('button', { name: 'Delete' }).click()
  await expect(page.getByTestId('rule-4242')).toHaveCount(0)
})

test('a rule the API refuses shows the error on the field', async ({ page }) => {
  await loginAsAdmin(page)
  await page.goto('/rules')
  await page.getByRole('button', { name: 'Add rule' }).click()
  const dialog = page.getByRole('dialog', { name: 'Add rule' })
  await dialog.getByLabel('Match').selectOption('port')
  await dialog.getByLabel('Port', { exact: true }).fill('70000')
  await dialog.getByRole('button', { name: 'Save rule' }).click()
  await expect(dialog.getByLabel('Port', { exact: true })).toHaveAttribute('aria-invalid', 'true')
  await expect(dialog.getByText(/less than or equal to 65535/)).toBeVisible()
})
