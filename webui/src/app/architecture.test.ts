/** bulletproof-react's rule: features never import each other (shared code lives in
 *  lib/ or components/), and nothing stores a credential in web storage. */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = join(__dirname, '..')

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : /\.(ts|tsx)$/.test(name) && !/\.test\./.test(name) ? [path] : []
  })
}

describe('architecture', () => {
  it('has no imports between features', () => {
    const offenders: string[] = []
    for (const file of files(join(SRC, 'features'))) {
      const feature = relative(join(SRC, 'features'), file).split(sep)[0]
      for (const match of readFileSync(file, 'utf8').matchAll(/from '@\/features\/([^/']+)/g)) {
        if (match[1] !== feature) offenders.push(`${relative(SRC, file)} -> ${match[1]}`)
      }
    }
    expect(offenders).toEqual([])
  })
  it('never writes tokens, keys or passwords to localStorage', () => {
    const offenders = files(SRC).filter((f) => /localStorage\.setItem/.test(readFileSync(f, 'utf8')))
    expect(offenders.map((f) => relative(SRC, f))).toEqual([])
  })
})
