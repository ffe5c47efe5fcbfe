/** Reconnect delays: exponential from BASE, capped at CAP, with jitter (never a herd). */
export const BACKOFF_BASE_MS = 500
export const BACKOFF_CAP_MS = 15_000

export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt))
  return Math.round(exp * (0.5 + random() * 0.5))
}
