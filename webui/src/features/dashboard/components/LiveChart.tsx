/**
 * A uPlot time-series chart created once and fed with `setData` outside React's render
 * path: it subscribes to the stream store's `tick` directly, so a stats message costs one
 * window extraction + one canvas redraw and no React work. Re-created only when its series
 * change (picker), resized with a ResizeObserver.
 */
import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import type { History } from '@/lib/stream/history'
import { getStream } from '@/lib/stream/store'
import { useDashboardUi, windowSeconds } from '../hooks/dashboard-ui'

export interface SeriesDef {
  label: string
  color: string
}

export interface LiveChartProps {
  title: string
  series: SeriesDef[]
  /** uPlot data ([times, ...values]) for the window starting at `since` (seconds). */
  data: (history: History, since: number) => (number | null)[][]
  format: (value: number) => string
  height?: number
  testId?: string
}

let canvasOk: boolean | null = null
/** False where a 2D canvas is missing (tests, very old browsers): the text summary stays. */
function canvasSupported(): boolean {
  canvasOk ??= typeof document !== 'undefined' && document.createElement('canvas').getContext('2d') !== null
  return canvasOk
}

const AXIS = '#fbbf24'
const GRID = '#334155'

export function LiveChart({ title, series, data, format, height = 190, testId }: LiveChartProps) {
  const wrap = useRef<HTMLDivElement>(null)
  const valueRef = useRef<HTMLSpanElement>(null)
  // The latest props, read by the subscription without re-subscribing.
  const dataRef = useRef(data)
  dataRef.current = data
  const formatRef = useRef(format)
  formatRef.current = format
  const seriesKey = series.map((s) => `${s.label}:${s.color}`).join(',')

  useEffect(() => {
    const el = wrap.current
    if (!el) return
    const stream = getStream()
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: AXIS, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID } },
        {
          stroke: AXIS,
          size: 80,
          grid: { stroke: GRID, width: 1 },
          ticks: { stroke: GRID },
          values: (_u, splits) => splits.map((v) => formatRef.current(v)),
        },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          spanGaps: false,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : formatRef.current(v)),
        })),
      ],
    }
    let plot: uPlot | null = null
    const compute = () => {
      const ui = useDashboardUi.getState()
      const end = (ui.paused && ui.pausedAt ? ui.pausedAt : Date.now()) / 1000
      return dataRef.current(stream.history, end - windowSeconds(ui.window))
    }
    const update = () => {
      const d = compute()
      plot?.setData(d as uPlot.AlignedData)
      const last = d[1]?.[d[1].length - 1]
      if (valueRef.current) valueRef.current.textContent = last === null || last === undefined ? 'no data yet' : formatRef.current(last)
    }
    try {
      plot = canvasSupported() ? new uPlot(opts, compute() as uPlot.AlignedData, el) : null
    } catch {
      plot = null
    }
    update()
    const unsubscribeStream = stream.store.subscribe((s, prev) => {
      if (s.tick !== prev.tick && !useDashboardUi.getState().paused) update()
    })
    const unsubscribeUi = useDashboardUi.subscribe((s, prev) => {
      if (s.window !== prev.window || s.paused !== prev.paused) update()
    })
    const observer =
      typeof ResizeObserver !== 'undefined'
        ? new ResizeObserver(() => plot?.setSize({ width: Math.max(200, el.clientWidth), height }))
        : null
    observer?.observe(el)
    return () => {
      unsubscribeStream()
      unsubscribeUi()
      observer?.disconnect()
      plot?.destroy()
      plot = null
    }
  }, [seriesKey, height]) // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <figure className="m-0" data-testid={testId}>
      <figcaption className="mb-2 flex items-baseline justify-between gap-2">
        <span className="text-sm font-semibold text-amber-400">{title}</span>
        <span className="text-sm tabular-nums text-amber-200" aria-live="off">
          <span className="sr-only">latest: </span>
          <span ref={valueRef} data-testid={testId ? `${testId}-value` : undefined}>
            no data yet
          </span>
        </span>
      </figcaption>
      <div ref={wrap} role="img" aria-label={`${title} chart, one point a second`} className="w-full overflow-hidden" />
    </figure>
  )
}
