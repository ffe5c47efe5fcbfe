/** WaddlePerf-style tabs (standard): gold labels, sky-blue underline on the active one,
 *  arrow keys move between tabs (WAI-ARIA tabs pattern). */
import { useRef, type KeyboardEvent } from 'react'

export interface TabItem<K extends string> {
  key: K
  label: string
}

export function Tabs<K extends string>({ tabs, active, onChange, label, idPrefix }: {
  tabs: TabItem<K>[]
  active: K
  onChange: (key: K) => void
  label: string
  idPrefix: string
}) {
  const refs = useRef<(HTMLButtonElement | null)[]>([])
  const onKey = (e: KeyboardEvent, index: number) => {
    let next = -1
    if (e.key === 'ArrowRight') next = (index + 1) % tabs.length
    else if (e.key === 'ArrowLeft') next = (index - 1 + tabs.length) % tabs.length
    else if (e.key === 'Home') next = 0
    else if (e.key === 'End') next = tabs.length - 1
    if (next < 0) return
    e.preventDefault()
    const tab = tabs[next]
    if (!tab) return
    onChange(tab.key)
    refs.current[next]?.focus()
  }
  return (
    <div className="tab-navigation" role="tablist" aria-label={label}>
      {tabs.map((tab, index) => (
        <button
          key={tab.key}
          ref={(el) => {
            refs.current[index] = el
          }}
          id={`${idPrefix}-tab-${tab.key}`}
          role="tab"
          type="button"
          aria-selected={active === tab.key}
          aria-controls={`${idPrefix}-panel-${tab.key}`}
          tabIndex={active === tab.key ? 0 : -1}
          className={`tab-button ${active === tab.key ? 'active' : ''}`}
          onClick={() => onChange(tab.key)}
          onKeyDown={(e) => onKey(e, index)}
        >
          {tab.label}
        </button>
      ))}
    </div>
  )
}

export function TabPanel({ idPrefix, tabKey, children }: { idPrefix: string; tabKey: string; children: React.ReactNode }) {
  return (
    <div role="tabpanel" id={`${idPrefix}-panel-${tabKey}`} aria-labelledby={`${idPrefix}-tab-${tabKey}`} tabIndex={0}>
      {children}
    </div>
  )
}
