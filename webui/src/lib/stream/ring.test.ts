import { describe, expect, it } from 'vitest'
import { Timeline } from './ring'

describe('Timeline', () => {
  it('wraps at capacity and windows by time', () => {
    const t = new Timeline(3, 4)
    for (let i = 1; i <= 5; i += 1) t.push(i, new Map([['a', i * 10]]))
    expect(t.length).toBe(3)
    expect(t.window(0, ['a'])).toEqual([[3, 4, 5], [30, 40, 50]])
    expect(t.window(4, ['a'])).toEqual([[4, 5], [40, 50]])
    expect(t.last('a')).toBe(50)
  })
  it('fills gaps with null for keys missing at a point and for late columns', () => {
    const t = new Timeline(4, 4)
    t.push(1, new Map([['a', 1]]))
    t.push(2, new Map([['b', 2]]))
    expect(t.window(0, ['a', 'b'])).toEqual([[1, 2], [1, null], [null, 2]])
  })
})
