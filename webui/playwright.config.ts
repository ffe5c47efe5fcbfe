/**
 * Playwright against the real product: tests/e2e/webui_stack.py starts `floe serve` with
 * the built dashboard (and, as root, `floe demo` traffic on a veth) and Debian's Chromium
 * drives it. One worker: the tests share one control plane and some change it (rules,
 * users, a restart), in file order.
 */
import { defineConfig } from '@playwright/test'
import { fileURLToPath } from 'node:url'
import { dirname, resolve } from 'node:path'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '..')
// Chosen once in the main process; workers inherit the environment.
process.env.FLOE_E2E_BASE_PORT ??= String(21000 + (process.pid % 800) * 10)
const base = Number(process.env.FLOE_E2E_BASE_PORT)
process.env.FLOE_E2E_CONTROL ??= `http://127.0.0.1:${base + 4}`

export default defineConfig({
  testDir: './e2e',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  globalTimeout: 15 * 60_000,
  reporter: [['list'], ['json', { outputFile: 'test-results/playwright.json' }]],
  outputDir: 'test-results/artifacts',
  use: {
    baseURL: `http://127.0.0.1:${base}`,
    viewport: { width: 1280, height: 860 },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.FLOE_CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
  },
  webServer: {
    command: `${repo}/.venv/bin/python -m tests.e2e.webui_stack`,
    cwd: repo,
    url: `http://127.0.0.1:${base}/healthz`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 30_000 },
    env: { FLOE_E2E_BASE_PORT: String(base), PYTHONPATH: repo },
  },
})
