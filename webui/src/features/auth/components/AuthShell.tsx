/** The login-page frame of the standard: the 300 px logo above the form, centred. */
import type { ReactNode } from 'react'

export function AuthShell({ title, children }: { title: string; children: ReactNode }) {
  return (
    <div className="flex min-h-screen flex-col items-center justify-center bg-gradient-to-br from-slate-900 via-slate-900 to-slate-800 px-4 py-8">
      <img src="/images/floe-logo.svg" alt="Floe" className="login-logo mb-8" />
      <main className="w-full max-w-[400px] rounded-lg border border-slate-700 bg-slate-800 p-8 shadow-xl max-md:p-5">
        <h1 className="mb-6 text-xl font-semibold text-amber-400">{title}</h1>
        {children}
      </main>
    </div>
  )
}
