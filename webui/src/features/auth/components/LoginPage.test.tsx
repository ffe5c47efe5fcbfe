import { describe, expect, it } from 'vitest'
import { act, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { meAnswer, mockApi, VIEWER_SCOPES } from '@/testing/mock-api'
import { renderPage } from '@/testing/render'
import { LoginPage } from './LoginPage'

const unauthenticated = { status: 401, error: { code: 'unauthenticated', message: 'Not logged in' } }

describe('LoginPage', () => {
  it('follows the login standard: logo above the form, nothing pre-filled, remember me, forgot link', async () => {
    mockApi({ 'GET /me': unauthenticated })
    renderPage(<LoginPage />, { path: '/login' })
    const email = await screen.findByLabelText('Email')
    const password = screen.getByLabelText('Password')
    expect(email).toHaveValue('')
    expect(password).toHaveValue('')
    expect(password).toHaveAttribute('type', 'password')
    expect(screen.getByLabelText('Remember me')).not.toBeChecked()
    expect(screen.getByRole('link', { name: 'Forgot password?' })).toHaveAttribute('href', '/forgot-password')
    const logo = screen.getByRole('img', { name: 'Floe' })
    expect(logo).toHaveClass('login-logo')
    expect(logo.compareDocumentPosition(email) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy()
    expect(document.body.textContent).not.toMatch(/admin123|admin@localhost/)
  })

  it('logs in with the browser session, sends remember, and goes where it was asked', async () => {
    let loggedIn = false
    const { sent } = mockApi({
      'GET /me': () => (loggedIn ? meAnswer(VIEWER_SCOPES) : unauthenticated),
      'POST /auth/login': () => {
        loggedIn = true
        return { data: { access_token: 'x', refresh_token: 'y', password_change_required: false } }
      },
    })
    const user = userEvent.setup()
    const { router } = renderPage(<LoginPage />, { path: '/login', at: '/login?next=/rules', extra: [{ path: '/rules', element: <div>rules page</div> }] })
    await user.type(await screen.findByLabelText('Email'), 'a@example.com')
    await user.type(screen.getByLabelText('Password'), 'pw')
    await user.click(screen.getByLabelText('Remember me'))
    await user.click(screen.getByRole('button', { name: 'Login' }))
    await screen.findByText('rules page')
    expect(router.state.location.pathname).toBe('/rules')
    const login = sent.find((s) => s.url === '/auth/login')
    expect(login?.body).toEqual({ email: 'a@example.com', password: 'pw', session: true, remember: true })
    expect(localStorage.length).toBe(0) // no token kept in storage
    expect(sessionStorage.getItem('floe.passwordChangeRequired')).toBeNull()
  })

  it('asks for the TOTP code when the account has 2FA, then sends it', async () => {
    const { sent } = mockApi({
      'GET /me': unauthenticated,
      'POST /auth/login': (s) => ((s.body as { totp_code?: string }).totp_code ? { status: 401, error: { code: 'invalid_credentials', message: 'bad code' } } : { status: 401, error: { code: 'totp_required', message: 'code needed' } }),
    })
    const user = userEvent.setup()
    renderPage(<LoginPage />, { path: '/login' })
    await user.type(await screen.findByLabelText('Email'), 'a@example.com')
    await user.type(screen.getByLabelText('Password'), 'pw')
    await user.click(screen.getByRole('button', { name: 'Login' }))
    const code = await screen.findByLabelText('Authentication code')
    await user.type(code, '123456')
    await user.click(screen.getByRole('button', { name: 'Verify and sign in' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('That code is not valid')
    expect(sent.filter((s) => s.url === '/auth/login').pop()?.body).toMatchObject({ totp_code: '123456', password: 'pw' })
  })

  it('shows a wrong password plainly, and the lockout with its countdown from Retry-After', async () => {
    let calls = 0
    mockApi({
      'GET /me': unauthenticated,
      'POST /auth/login': () => {
        calls += 1
        return calls < 2
          ? { status: 401, error: { code: 'invalid_credentials', message: 'Invalid email or password' } }
          : { status: 429, error: { code: 'account_locked', message: 'Too many failures' }, headers: { 'retry-after': '125' } }
      },
    })
    const user = userEvent.setup()
    renderPage(<LoginPage />, { path: '/login' })
    await user.type(await screen.findByLabelText('Email'), 'a@example.com')
    await user.type(screen.getByLabelText('Password'), 'nope')
    await user.click(screen.getByRole('button', { name: 'Login' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong email or password.')
    await user.click(screen.getByRole('button', { name: 'Login' }))
    await waitFor(() => expect(screen.getByRole('alert')).toHaveTextContent('locked'))
    expect(screen.getByTestId('lockout-wait')).toHaveTextContent('Try again in 2 min 05 s')
    expect(screen.getByRole('button', { name: 'Login' })).toBeDisabled()
    await act(async () => undefined)
  })
})
