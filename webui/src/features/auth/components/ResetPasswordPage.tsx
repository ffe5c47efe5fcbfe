import { useState, type FormEvent } from 'react'
import { Link, useSearchParams } from 'react-router-dom'
import { Button } from '@/components/ui/Button'
import { ErrorNotice, Notice } from '@/components/ui/Feedback'
import { TextField } from '@/components/ui/Field'
import { useResetPassword } from '../api/password-reset'
import { AuthShell } from './AuthShell'

export default function ResetPasswordPage() {
  const [params] = useSearchParams()
  const token = params.get('token') ?? ''
  const [password, setPassword] = useState('')
  const [confirm, setConfirm] = useState('')
  const reset = useResetPassword()
  const mismatch = confirm !== '' && confirm !== password
  const submit = (e: FormEvent) => {
    e.preventDefault()
    if (!mismatch) reset.mutate({ token, password })
  }
  return (
    <AuthShell title="Choose a new password">
      {!token ? (
        <Notice tone="warning">This page needs the link from the reset mail. Ask for a new one from the sign-in page.</Notice>
      ) : reset.isSuccess ? (
        <Notice tone="success">Your password is changed and every other session has been signed out.</Notice>
      ) : (
        <form onSubmit={submit} className="space-y-5">
          <ErrorNotice error={reset.error} title="Could not reset the password" />
          <TextField label="New password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <TextField label="Repeat the new password" type="password" autoComplete="new-password" required value={confirm} error={mismatch ? 'The two passwords differ.' : null} onChange={(e) => setConfirm(e.target.value)} />
          <Button type="submit" className="w-full" disabled={reset.isPending || mismatch}>
            Set password
          </Button>
        </form>
      )}
      <p className="mt-6 text-center text-sm">
        <Link to="/login" className="text-primary-400 hover:text-primary-300 hover:underline">
          Back to sign in
        </Link>
      </p>
    </AuthShell>
  )
}
