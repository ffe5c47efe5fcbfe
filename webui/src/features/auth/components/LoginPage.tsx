/**
 * Login (standard: logo above the form, email, password, remember me, forgot-password link;
 * nothing pre-filled, no default credentials shown). A 401 `totp_required` switches to the
 * code step; 429 (lockout / throttle) shows how long to wait from Retry-After.
 */
import { useEffect, useState, type FormEvent } from 'react'
import { Link, Navigate, useNavigate, useSearchParams } from 'react-router-dom'
import { LogIn } from 'lucide-react'
import { ApiError, toApiError } from '@/lib/api-client'
import { useAuth } from '@/lib/auth'
import { Button } from '@/components/ui/Button'
import { Checkbox, TextField } from '@/components/ui/Field'
import { AuthShell } from './AuthShell'

function safeNext(next: string | null): string {
  // Only same-site paths: never an open redirect to another origin.
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/'
}

function formatWait(seconds: number): string {
  const m = Math.floor(seconds / 60)
  const s = seconds % 60
  return m > 0 ? `${m} min ${s.toString().padStart(2, '0')} s` : `${s} s`
}

export function LoginPage() {
  const auth = useAuth()
  const navigate = useNavigate()
  const [params] = useSearchParams()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [remember, setRemember] = useState(false)
  const [totpCode, setTotpCode] = useState('')
  const [step, setStep] = useState<'password' | 'totp'>('password')
  const [error, setError] = useState<string | null>(null)
  const [lockedUntil, setLockedUntil] = useState<number | null>(null)
  const [now, setNow] = useState(() => Date.now())
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    if (lockedUntil === null) return
    const id = setInterval(() => {
      const t = Date.now()
      setNow(t)
      if (t >= lockedUntil) setLockedUntil(null)
    }, 1000)
    return () => clearInterval(id)
  }, [lockedUntil])

  if (auth.me) return <Navigate to={safeNext(params.get('next'))} replace />

  const waitSeconds = lockedUntil ? Math.max(0, Math.ceil((lockedUntil - now) / 1000)) : 0

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (busy || waitSeconds > 0) return
    setBusy(true)
    setError(null)
    try {
      await auth.login({ email, password, remember, totpCode: step === 'totp' ? totpCode.trim() : undefined })
      navigate(safeNext(params.get('next')), { replace: true })
    } catch (caught) {
      const err = caught instanceof ApiError ? caught : toApiError(caught)
      if (err.code === 'totp_required') {
        setStep('totp')
        setError(null)
      } else if (err.status === 429) {
        const wait = err.retryAfter ?? 60
        setLockedUntil(Date.now() + wait * 1000)
        setNow(Date.now())
        setError(
          err.code === 'account_locked'
            ? 'Too many failed sign-in attempts: this account is locked for now.'
            : 'Too many sign-in attempts from here.',
        )
      } else if (err.code === 'invalid_credentials' || err.status === 401) {
        setError(step === 'totp' ? 'That code is not valid. Check your authenticator app and try again.' : 'Wrong email or password.')
      } else {
        setError(err.message)
      }
    } finally {
      setBusy(false)
    }
  }

  return (
    <AuthShell title={step === 'totp' ? 'Two-factor authentication' : 'Sign in to Floe'}>
      <form onSubmit={(e) => void submit(e)} className="space-y-5" noValidate={false} aria-describedby={error ? 'login-error' : undefined}>
        {!error && params.get('reason') === 'password-changed' && (
          <p role="status" className="rounded-lg border border-green-500/50 bg-green-950/60 px-3 py-2 text-sm text-green-100">
            Password changed: every session was signed out. Sign in with the new password.
          </p>
        )}
        {error && (
          <div id="login-error" role="alert" className="rounded-lg border border-red-500/60 bg-red-950/70 px-3 py-2 text-sm text-red-100">
            <p>{error}</p>
            {waitSeconds > 0 && (
              <p className="mt-1 font-semibold" data-testid="lockout-wait">
                Try again in {formatWait(waitSeconds)}.
              </p>
            )}
          </div>
        )}
        {step === 'password' ? (
          <>
            <TextField
              label="Email"
              type="email"
              name="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              placeholder="Enter your email"
            />
            <TextField
              label="Password"
              type="password"
              name="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              placeholder="Enter your password"
            />
            <div className="flex items-center justify-between gap-2">
              <Checkbox label="Remember me" checked={remember} onChange={(e) => setRemember(e.target.checked)} />
              <Link to="/forgot-password" className="text-sm text-primary-400 underline-offset-2 hover:text-primary-300 hover:underline">
                Forgot password?
              </Link>
            </div>
          </>
        ) : (
          <>
            <p className="text-sm text-amber-300">Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
            <TextField
              label="Authentication code"
              name="totp"
              inputMode="text"
              autoComplete="one-time-code"
              autoFocus
              required
              maxLength={32}
              value={totpCode}
              onChange={(e) => setTotpCode(e.target.value)}
            />
          </>
        )}
        <Button type="submit" className="w-full" size="lg" disabled={busy || waitSeconds > 0} icon={<LogIn className="w-5 h-5" aria-hidden />}>
          {busy ? 'Signing in…' : step === 'totp' ? 'Verify and sign in' : 'Login'}
        </Button>
        {step === 'totp' && (
          <button
            type="button"
            className="w-full text-center text-sm text-primary-400 underline-offset-2 hover:underline"
            onClick={() => {
              setStep('password')
              setTotpCode('')
              setError(null)
            }}
          >
            Back
          </button>
        )}
      </form>
    </AuthShell>
  )
}
