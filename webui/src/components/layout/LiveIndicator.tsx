/** "Live" / "Reconnecting in 4 s" / "Offline": the stream store's state, always visible. */
import { useEffect, useState } from 'react'
import { RefreshCw } from 'lucide-react'
import { getStream, useStream } from '@/lib/stream/store'

export function LiveIndicator() {
  const status = useStream((s) => s.status)
  const retryAt = useStream((s) => s.retryAt)
  const attempt = useStream((s) => s.attempt)
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    if (status !== 'reconnecting') return
    const id = setInterval(() => setNow(Date.now()), 500)
    return () => clearInterval(id)
  }, [status])

  let dot = 'bg-slate-500'
  let text = 'Offline'
  if (status === 'live') {
    dot = 'bg-green-400'
    text = 'Live'
  } else if (status === 'connecting') {
    dot = 'bg-yellow-400'
    text = 'Connecting…'
  } else if (status === 'reconnecting') {
    dot = 'bg-yellow-400'
    const seconds = retryAt ? Math.max(0, Math.ceil((retryAt - now) / 1000)) : null
    text = seconds ? `Reconnecting in ${seconds} s (attempt ${attempt})` : 'Reconnecting…'
  }
  return (
    <div className="flex items-center gap-2">
      <span role="status" aria-live="polite" data-testid="live-indicator" data-status={status} className="inline-flex items-center gap-2 rounded-full border border-slate-600 bg-slate-800 px-3 py-1 text-sm text-amber-200">
        <span className={`h-2.5 w-2.5 rounded-full ${dot}`} aria-hidden />
        {text}
      </span>
      {status === 'reconnecting' && (
        <button type="button" onClick={() => getStream().retryNow()} className="rounded p-1 text-amber-400 hover:bg-slate-700 focus-visible:ring-2 focus-visible:ring-primary-500" aria-label="Reconnect now">
          <RefreshCw className="w-4 h-4" aria-hidden />
        </button>
      )}
    </div>
  )
}
