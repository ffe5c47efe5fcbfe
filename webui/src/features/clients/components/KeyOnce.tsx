/** The new API key, shown exactly once: it lives in this component's state only (never in
 *  storage or a query cache) and is gone when the dialog closes. */
import { AlertTriangle } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Drawer } from '@/components/ui/Drawer'
import { CopyButton } from '@/components/ui/Misc'

export function KeyOnce({ issued, onClose }: { issued: { name: string; api_key: string } | null; onClose: () => void }) {
  return (
    <Drawer open={issued !== null} title="Your new API key" side="center" onClose={onClose}>
      {issued && (
        <div className="space-y-4">
          <div role="alert" className="flex gap-3 rounded-lg border border-yellow-500/60 bg-yellow-950/60 px-3 py-2 text-sm text-yellow-100">
            <AlertTriangle className="mt-0.5 h-5 w-5 shrink-0" aria-hidden />
            <p>Copy the key for “{issued.name}” now. Floe stores only its hash: it will not be shown again.</p>
          </div>
          <label className="block text-sm font-medium text-amber-300" htmlFor="issued-key">
            API key
          </label>
          <input id="issued-key" readOnly value={issued.api_key} data-testid="issued-key" className="w-full rounded-lg border border-slate-600 bg-slate-900 px-3 py-2 font-mono text-sm text-amber-100" onFocus={(e) => e.currentTarget.select()} />
          <div className="flex justify-between gap-2">
            <CopyButton text={issued.api_key} label="Copy key" />
            <Button onClick={onClose}>I have stored it</Button>
          </div>
        </div>
      )}
    </Drawer>
  )
}
