import { describe, expect, it } from 'vitest'
import { screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { LoginPage } from '@/features/auth/components/LoginPage'
import { meAnswer, mockApi, VIEWER_SCOPES } from '@/testing/mock-api'
import { renderPage } from '@/testing/render'
import ProfilePage from './ProfilePage'

const profile = { data: { id: 1, email: 'someone@example.com', display_name: null, roles: ['viewer'], totp_enabled: false, current_login_at: null } }

describe('ProfilePage', () => {
  it('changes the password, then sends the user to sign in again with the reason', async () => {
    let changed = false
    const { sent } = mockApi({
      'GET /me': () => (changed ? { status: 401, error: { code: 'unauthenticated', message: 'no' } } : meAnswer(VIEWER_SCOPES)),
      'GET /me/profile': profile,
      'POST /me/password': () => {
        changed = true
        return { data: { changed: true } }
      },
    })
    const user = userEvent.setup()
    renderPage(<ProfilePage />, { path: '/profile', at: '/profile?tab=password', extra: [{ path: '/login', element: <LoginPage /> }] })
    await user.type(await screen.findByLabelText('Current password'), 'old-password')
    await user.type(screen.getByLabelText('New password'), 'A-new-long-password-1')
    await user.type(screen.getByLabelText('Repeat the new password'), 'A-new-long-password-1')
    await user.click(screen.getByRole('button', { name: 'Change password' }))
    expect(await screen.findByText(/Password changed: every session was signed out/)).toBeInTheDocument()
    expect(sent.find((s) => s.url === '/me/password')?.body).toEqual({ current_password: 'old-password', new_password: 'A-new-long-password-1' })
  })

  it('refuses two different new passwords before asking the server', async () => {
    const { sent } = mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES), 'GET /me/profile': profile })
    const user = userEvent.setup()
    renderPage(<ProfilePage />, { path: '/profile', at: '/profile?tab=password' })
    await user.type(await screen.findByLabelText('New password'), 'one-long-password')
    await user.type(screen.getByLabelText('Repeat the new password'), 'two-long-password')
    expect(screen.getByLabelText('Repeat the new password')).toHaveAccessibleDescription('The two passwords differ.')
    expect(screen.getByRole('button', { name: 'Change password' })).toBeDisabled()
    expect(sent.some((s) => s.url === '/me/password')).toBe(false)
  })
})
