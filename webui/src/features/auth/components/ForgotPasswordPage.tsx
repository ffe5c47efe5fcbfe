import { useState, type FormEvent } from 'react'
import { Link } from 'react-router-dom'
import { Button } from '@/components/ui/Button'
import { ErrorNotice, Notice } from '@/components/ui/Feedback'
import { TextField } from '@/components/ui/Field'
import { useRequestPasswordReset } from '../api/password-reset'
import { AuthShell } from './AuthShell'

export default function ForgotPasswordPage() {
  const [email, setEmail] = useState('')
  const request = useRequestPasswordReset()
  const submit = (e: FormEvent) => {
    e.preventDefault()
    request.mutate(email)
  }
  return (
    <AuthShell title="Reset your password">
      {request.isSuccess ? (
        <Notice tone="success">If an account exists for that address, a reset link is on its way. Check your mail.</Notice>
      ) : (
        <form onSubmit={submit} className="space-y-5">
          <p className="text-sm text-amber-300">Enter your account's email address and we will send you a link to set a new password.</p>
          <ErrorNotice error={request.error} title="Could not send the link" />
          <TextField label="Email" type="email" required autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          <Button type="submit" className="w-full" disabled={request.isPending}>
            {request.isPending ? 'Sending…' : 'Send reset link'}
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
