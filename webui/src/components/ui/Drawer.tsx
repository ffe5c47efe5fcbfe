/** A modal side panel / dialog on <dialog>: focus is trapped by the browser, Escape closes. */
import { useEffect, useRef, type ReactNode } from 'react'
import { X } from 'lucide-react'

export function Drawer({ open, title, onClose, children, side = 'right', wide = false }: {
  open: boolean
  title: string
  onClose: () => void
  children: ReactNode
  side?: 'right' | 'center'
  wide?: boolean
}) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const dialog = ref.current
    if (!dialog) return
    if (open && !dialog.open) {
      if (typeof dialog.showModal === 'function') dialog.showModal()
      else dialog.setAttribute('open', '')
    } else if (!open && dialog.open) {
      if (typeof dialog.close === 'function') dialog.close()
      else dialog.removeAttribute('open')
    }
  }, [open])
  const place =
    side === 'right'
      ? `ml-auto mr-0 h-full max-h-full ${wide ? 'w-[42rem]' : 'w-[28rem]'} max-w-full rounded-none`
      : `m-auto ${wide ? 'w-[42rem]' : 'w-[30rem]'} max-w-[95vw] rounded-lg`
  return (
    <dialog
      ref={ref}
      aria-label={title}
      onCancel={(e) => {
        e.preventDefault()
        onClose()
      }}
      onClose={onClose}
      className={`${place} border border-slate-600 bg-slate-800 p-0 text-amber-400 backdrop:bg-slate-950/70`}
    >
      {open && (
        <div className="flex h-full flex-col">
          <div className="flex items-center justify-between border-b border-slate-700 px-5 py-3">
            <h2 className="text-lg font-semibold text-amber-400">{title}</h2>
            <button type="button" onClick={onClose} aria-label="Close" className="rounded p-1 text-amber-400 hover:bg-slate-700 focus-visible:ring-2 focus-visible:ring-primary-500">
              <X className="w-5 h-5" aria-hidden />
            </button>
          </div>
          <div className="flex-1 overflow-y-auto px-5 py-4">{children}</div>
        </div>
      )}
    </dialog>
  )
}
