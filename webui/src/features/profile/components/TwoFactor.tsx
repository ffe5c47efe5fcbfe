/** TOTP enrolment: a QR code of the otpauth URI (rendered locally as SVG: the secret never
 *  leaves the page), the code check, then the recovery codes — shown once. */
import { useState, type FormEvent } from 'react'
import { QRCodeSVG } from 'qrcode.react'
import { Button } from '@/components/ui/Button'
import { ErrorNotice, Notice } from '@/components/ui/Feedback'
import { TextField } from '@/components/ui/Field'
import { CopyButton } from '@/components/ui/Misc'
import { useTotp, type Enrolment } from '../api/profile'

export function TwoFactor({ enabled }: { enabled: boolean }) {
  const totp = useTotp()
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null)
  const [code, setCode] = useState('')
  const [recovery, setRecovery] = useState<string[] | null>(null)
  const [disableCode, setDisableCode] = useState('')

  if (recovery) {
    return (
      <div className="space-y-4" data-testid="recovery-codes">
        <Notice tone="success">Two-factor authentication is on.</Notice>
        <Notice tone="warning">Store these recovery codes somewhere safe. Each works once if you lose your authenticator. They will not be shown again.</Notice>
        <ul className="grid grid-cols-2 gap-2 font-mono text-amber-100 sm:grid-cols-5">
          {recovery.map((c) => (
            <li key={c} className="rounded bg-slate-900 px-2 py-1 text-center">
              {c}
            </li>
          ))}
        </ul>
        <div className="flex gap-2">
          <CopyButton text={recovery.join('\n')} label="Copy codes" />
          <Button variant="secondary" onClick={() => setRecovery(null)}>
            Done
          </Button>
        </div>
      </div>
    )
  }

  if (enabled) {
    const submit = (e: FormEvent) => {
      e.preventDefault()
      totp.disable.mutate(disableCode, { onSuccess: () => setDisableCode('') })
    }
    return (
      <form onSubmit={submit} className="max-w-md space-y-4">
        <Notice tone="success">Two-factor authentication is on for your account.</Notice>
        <ErrorNotice error={totp.disable.error} title="2FA is still on" />
        <TextField label="Current code or a recovery code" autoComplete="one-time-code" value={disableCode} onChange={(e) => setDisableCode(e.target.value)} required />
        <Button type="submit" variant="danger" disabled={totp.disable.isPending || !disableCode}>
          Turn off 2FA
        </Button>
      </form>
    )
  }

  if (!enrolment) {
    return (
      <div className="max-w-md space-y-4">
        <p className="text-amber-300">Protect your account with a code from an authenticator app (TOTP) at every sign-in.</p>
        <ErrorNotice error={totp.enrol.error} title="Could not start enrolment" />
        <Button onClick={() => totp.enrol.mutate(undefined, { onSuccess: setEnrolment })} disabled={totp.enrol.isPending}>
          Set up two-factor authentication
        </Button>
      </div>
    )
  }

  const verify = (e: FormEvent) => {
    e.preventDefault()
    totp.verify.mutate(code.trim(), {
      onSuccess: (answer) => {
        setRecovery(answer.recovery_codes)
        setEnrolment(null)
        setCode('')
      },
    })
  }
  return (
    <div className="grid gap-6 md:grid-cols-2">
      <div className="space-y-3">
        <p className="text-amber-300">1. Scan this QR code with your authenticator app.</p>
        <div className="inline-block rounded-lg bg-white p-3" role="img" aria-label="TOTP enrolment QR code">
          <QRCodeSVG value={enrolment.otpauth_uri} size={192} aria-hidden="true" />
        </div>
        <p className="text-sm text-amber-300">
          Or type the secret: <code className="break-all text-amber-100" data-testid="totp-secret">{enrolment.secret}</code>
        </p>
      </div>
      <form onSubmit={verify} className="space-y-4">
        <p className="text-amber-300">2. Enter the 6-digit code it shows.</p>
        <ErrorNotice error={totp.verify.error} title="That code did not match" />
        <TextField label="Code from the app" inputMode="numeric" autoComplete="one-time-code" maxLength={8} value={code} onChange={(e) => setCode(e.target.value)} required />
        <Button type="submit" disabled={totp.verify.isPending || !code}>
          Verify and turn on
        </Button>
      </form>
    </div>
  )
}
