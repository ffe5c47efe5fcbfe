/**
 * A fixed-capacity, column-aligned time series: one shared time axis and one value column
 * per series key, oldest points overwritten. It is the only place chart history grows, so
 * memory stays flat however long the tab stays open (capacity × columns × 8 bytes).
 */
export class Timeline {
  readonly capacity: number
  readonly maxColumns: number
  private readonly times: Float64Array
  private readonly columns = new Map<string, Float64Array>()
  private start = 0
  private size = 0
  /** Columns refused because `maxColumns` was reached (reported, never grown). */
  refusedColumns = 0

  constructor(capacity: number, maxColumns: number) {
    if (capacity < 1 || maxColumns < 1) throw new Error('capacity and maxColumns must be ≥ 1')
    this.capacity = capacity
    this.maxColumns = maxColumns
    this.times = new Float64Array(capacity)
  }

  get length(): number {
    return this.size
  }

  get columnCount(): number {
    return this.columns.size
  }

  has(key: string): boolean {
    return this.columns.has(key)
  }

  /** Append one point in time; keys not given get a gap (NaN), unknown keys a new column. */
  push(time: number, values: ReadonlyMap<string, number | null>): void {
    const at = (this.start + this.size) % this.capacity
    this.times[at] = time
    for (const key of values.keys()) {
      if (!this.columns.has(key)) {
        if (this.columns.size >= this.maxColumns) {
          this.refusedColumns += 1
          continue
        }
        this.columns.set(key, new Float64Array(this.capacity).fill(Number.NaN))
      }
    }
    for (const [key, column] of this.columns) {
      const v = values.get(key)
      column[at] = v === null || v === undefined || !Number.isFinite(v) ? Number.NaN : v
    }
    if (this.size < this.capacity) this.size += 1
    else this.start = (this.start + 1) % this.capacity
  }

  /** uPlot data for `keys` over points with time ≥ `since`: [times, ...columns]. */
  window(since: number, keys: readonly string[]): (number | null)[][] {
    let first = 0
    while (first < this.size && (this.times[(this.start + first) % this.capacity] ?? 0) < since) first += 1
    const n = this.size - first
    const times: number[] = new Array(n)
    const cols = keys.map(() => new Array<number | null>(n))
    for (let i = 0; i < n; i += 1) {
      const at = (this.start + first + i) % this.capacity
      times[i] = this.times[at] ?? 0
      keys.forEach((key, c) => {
        const v = this.columns.get(key)?.[at] ?? Number.NaN
        ;(cols[c] as (number | null)[])[i] = Number.isNaN(v) ? null : v
      })
    }
    return [times, ...cols]
  }

  /** The newest value of a column (null for a gap or an unknown key). */
  last(key: string): number | null {
    if (this.size === 0) return null
    const v = this.columns.get(key)?.[(this.start + this.size - 1) % this.capacity] ?? Number.NaN
    return Number.isNaN(v) ? null : v
  }
}
