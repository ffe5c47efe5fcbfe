/**
 * Dashboard UI state (zustand: UI state only): time window, pause, node and interface
 * pickers. The window is kept in sessionStorage: it lasts while the tab is open.
 */
import { create } from 'zustand'

export const WINDOWS = [
  { key: '1m', label: '1 min', seconds: 60 },
  { key: '5m', label: '5 min', seconds: 300 },
  { key: '15m', label: '15 min', seconds: 900 },
] as const
export type WindowKey = (typeof WINDOWS)[number]['key']

const WINDOW_KEY = 'floe.dashboard.window'

function loadWindow(): WindowKey {
  const saved = typeof sessionStorage !== 'undefined' ? sessionStorage.getItem(WINDOW_KEY) : null
  return WINDOWS.some((w) => w.key === saved) ? (saved as WindowKey) : '5m'
}

interface DashboardUi {
  window: WindowKey
  paused: boolean
  /** Wall-clock time the view froze at (the window's right edge while paused). */
  pausedAt: number | null
  node: string
  iface: string
  setWindow: (w: WindowKey) => void
  togglePause: () => void
  setNode: (node: string) => void
  setIface: (iface: string) => void
}

export const useDashboardUi = create<DashboardUi>((set) => ({
  window: loadWindow(),
  paused: false,
  pausedAt: null,
  node: '',
  iface: '',
  setWindow: (w) => {
    sessionStorage.setItem(WINDOW_KEY, w)
    set({ window: w })
  },
  togglePause: () => set((s) => ({ paused: !s.paused, pausedAt: s.paused ? null : Date.now() })),
  setNode: (node) => set({ node, iface: '' }),
  setIface: (iface) => set({ iface }),
}))

export function windowSeconds(key: WindowKey): number {
  return WINDOWS.find((w) => w.key === key)?.seconds ?? 300
}

/** Interface keys (`node/iface`) the pickers select from `all`. */
export function selectInterfaces(all: readonly string[], node: string, iface: string): string[] {
  return all.filter((key) => {
    const [n, ...rest] = key.split('/')
    const name = rest.join('/')
    return (!node || n === node) && (!iface || name === iface)
  })
}
