import { expect, test } from '@playwright/test'
import { loginAsAdmin } from './support'

test('create an API client: the key is shown exactly once, and it works', async ({ page, request }) => {
  await loginAsAdmin(page)
  await page.getByRole('link', { name: 'API clients' }).click()
  await page.getByRole('button', { name: 'Create API client' }).click()
  const dialog = page.getByRole('dialog', { name: 'Create API client' })
  await dialog.getByLabel('Name').fill('e2e-collector')
  await dialog.getByLabel('flows:read').check()
  await dialog.getByRole('button', { name: 'Create key' }).click()
  const shown = page.getByTestId('issued-key')
  await expect(shown).toBeVisible()
  const key = await shown.inputValue()
  expect(key.length).toBeGreaterThan(20)
  const works = await request.get('/api/v2/flows?limit=1', { headers: { Authorization: `Bearer ${key}` } })
  expect(works.status()).toBe(200)
  await page.getByRole('button', { name: 'I have stored it' }).click()
  await expect(shown).toHaveCount(0)
  await expect(page.getByTestId('client-e2e-collector')).toBeVisible()
  expect(await page.content()).not.toContain(key)
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }))
  expect(storage).not.toContain(key)
  await page.reload()
  await expect(page.getByTestId('client-e2e-collector')).toBeVisible()
  expect(await page.content()).not.toContain(key)

  // Rotating shows a new key, once; the old one stops at once.
  await page.getByRole('button', { name: 'Rotate e2e-collector' }).click()
  const rotated = await page.getByTestId('issued-key').inputValue()
  expect(rotated).not.toBe(key)
  await page.getByRole('button', { name: 'I have stored it' }).click()
  expect((await request.get('/api/v2/flows?limit=1', { headers: { Authorization: `Bearer ${key}` } })).status()).toBe(401)
})
