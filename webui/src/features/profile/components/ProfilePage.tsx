/** Profile: display name, password change, 2FA, and "log out everywhere". */
import { useState, type FormEvent } from 'react'
import { useNavigate, useSearchParams } from 'react-router-dom'
import { LogOut } from 'lucide-react'
import { Button } from '@/components/ui/Button'
import { Card } from '@/components/ui/Card'
import { ErrorNotice, Notice, Skeleton } from '@/components/ui/Feedback'
import { TextField } from '@/components/ui/Field'
import { PageHeader, Time } from '@/components/ui/Misc'
import { TabPanel, Tabs } from '@/components/ui/Tabs'
import { fieldErrorMap } from '@/lib/api-client'
import { useAuth } from '@/lib/auth'
import { useChangePassword, useLogoutEverywhere, useProfile, useUpdateProfile } from '../api/profile'
import { TwoFactor } from './TwoFactor'

type TabKey = 'profile' | 'password' | '2fa' | 'sessions'
const TABS: { key: TabKey; label: string }[] = [
  { key: 'profile', label: 'Profile' },
  { key: 'password', label: 'Password' },
  { key: '2fa', label: 'Two-factor' },
  { key: 'sessions', label: 'Sessions' },
]

function PasswordForm() {
  const auth = useAuth()
  const navigate = useNavigate()
  const change = useChangePassword()
  const [current, setCurrent] = useState('')
  const [next, setNext] = useState('')
  const [repeat, setRepeat] = useState('')
  const errors = fieldErrorMap(change.error)
  const mismatch = repeat !== '' && repeat !== next
  const submit = (e: FormEvent) => {
    e.preventDefault()
    if (mismatch) return
    change.mutate(
      { current_password: current, new_password: next },
      {
        onSuccess: () => {
          setCurrent('')
          setNext('')
          setRepeat('')
          // The server changed the security stamp: this session ended too. Sign in again.
          auth.passwordChanged()
          navigate('/login?reason=password-changed', { replace: true })
        },
      },
    )
  }
  return (
    <form onSubmit={submit} className="max-w-md space-y-4">
      {auth.passwordChangeRequired && <Notice tone="warning">Your password was set by default or by an administrator: choose your own.</Notice>}
      {change.isSuccess && <Notice tone="success">Password changed. Every session, this one included, now needs the new password.</Notice>}
      {change.error && !Object.keys(errors).length ? <ErrorNotice error={change.error} title="Password not changed" /> : null}
      <TextField label="Current password" type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} error={errors.current_password} />
      <TextField label="New password" type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} error={errors.new_password} />
      <TextField label="Repeat the new password" type="password" autoComplete="new-password" required value={repeat} onChange={(e) => setRepeat(e.target.value)} error={mismatch ? 'The two passwords differ.' : null} />
      <Button type="submit" disabled={change.isPending || mismatch}>
        Change password
      </Button>
    </form>
  )
}

export default function ProfilePage() {
  const auth = useAuth()
  const isUser = auth.me?.kind !== 'api_key' && auth.me?.user_id !== null
  const profile = useProfile(isUser)
  const update = useUpdateProfile()
  const logoutAll = useLogoutEverywhere()
  const [params, setParams] = useSearchParams()
  const tabParam = params.get('tab') as TabKey | null
  const tab: TabKey = TABS.some((t) => t.key === tabParam) ? (tabParam as TabKey) : 'profile'
  const [name, setName] = useState<string | null>(null)

  return (
    <div>
      <PageHeader title="Profile" description={auth.me?.email ?? undefined} />
      <Tabs<TabKey> idPrefix="profile" label="Profile sections" tabs={TABS} active={tab} onChange={(k) => setParams({ tab: k }, { replace: true })} />
      <TabPanel idPrefix="profile" tabKey={tab}>
        {tab === 'profile' && (
          <Card>
            {profile.isLoading ? (
              <Skeleton className="h-24 w-full" label="Loading profile" />
            ) : (
              <form
                className="max-w-md space-y-4"
                onSubmit={(e) => {
                  e.preventDefault()
                  update.mutate(name ?? profile.data?.display_name ?? '')
                }}
              >
                <ErrorNotice error={profile.error ?? update.error} title="Profile" />
                {update.isSuccess && <Notice tone="success">Saved.</Notice>}
                <TextField label="Display name" value={name ?? profile.data?.display_name ?? ''} onChange={(e) => setName(e.target.value)} maxLength={128} />
                <dl className="grid grid-cols-[9rem_1fr] gap-y-1 text-sm">
                  <dt className="text-amber-500">Roles</dt>
                  <dd className="text-amber-100">{profile.data?.roles.join(', ') || 'none'}</dd>
                  <dt className="text-amber-500">Scopes</dt>
                  <dd className="text-xs text-amber-100">{auth.me?.scopes.join(', ') || 'none'}</dd>
                  {auth.me?.node_scopes && Object.keys(auth.me.node_scopes).length > 0 && (
                    <>
                      <dt className="text-amber-500">Node grants</dt>
                      <dd className="text-xs text-amber-100">{Object.keys(auth.me.node_scopes).join(', ')}</dd>
                    </>
                  )}
                  <dt className="text-amber-500">Last sign-in</dt>
                  <dd className="text-amber-100">
                    <Time value={profile.data?.current_login_at} />
                  </dd>
                </dl>
                <Button type="submit" disabled={update.isPending}>
                  Save
                </Button>
              </form>
            )}
          </Card>
        )}
        {tab === 'password' && (
          <Card>
            <PasswordForm />
          </Card>
        )}
        {tab === '2fa' && <Card>{profile.isLoading ? <Skeleton className="h-24 w-full" /> : <TwoFactor enabled={profile.data?.totp_enabled === true} />}</Card>}
        {tab === 'sessions' && (
          <Card>
            <div className="max-w-lg space-y-4">
              <p className="text-amber-300">Sign out of every browser and revoke every token of your account, this session included. API keys are not affected (revoke them under API clients).</p>
              <ErrorNotice error={logoutAll.error} title="Sessions were not ended" />
              <Button variant="danger" icon={<LogOut className="w-4 h-4" aria-hidden />} disabled={logoutAll.isPending} onClick={() => logoutAll.mutate(undefined, { onSuccess: () => void auth.logout() })}>
                Log out everywhere
              </Button>
            </div>
          </Card>
        )}
      </TabPanel>
    </div>
  )
}
