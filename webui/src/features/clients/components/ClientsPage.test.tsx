import { describe, expect, it } from 'vitest'
import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { ADMIN_SCOPES, meAnswer, mockApi } from '@/testing/mock-api'
import { renderPage } from '@/testing/render'
import ClientsPage from './ClientsPage'

const KEY = 'floe_abcdefghijklmnopqrstuvwxyz0123456789'

describe('ClientsPage', () => {
  it('shows a new key exactly once, keeps it out of storage and the query cache', async () => {
    let created = false
    mockApi({
      'GET /me': meAnswer(ADMIN_SCOPES),
      'GET /roles/scopes': { data: { resources: { flows: ['read'], stats: ['read'] }, builtin_roles: {} } },
      'GET /clients': () => ({ data: created ? [{ id: 7, name: 'collector', prefix: 'abcd', scopes: ['flows:read'], node_id: null, revoked_at: null, created_at: '2026-01-01T00:00:00' }] : [], meta: { total: created ? 1 : 0, offset: 0, limit: 50 } }),
      'POST /clients': () => {
        created = true
        return { status: 201, data: { id: 7, name: 'collector', prefix: 'abcd', scopes: ['flows:read'], api_key: KEY } }
      },
    })
    const user = userEvent.setup()
    const { queryClient } = renderPage(<ClientsPage />)
    await user.click(await screen.findByRole('button', { name: 'Create API client' }))
    const dialog = await screen.findByRole('dialog', { name: 'Create API client' })
    await user.type(within(dialog).getByLabelText('Name'), 'collector')
    await user.click(await within(dialog).findByLabelText('flows:read'))
    await user.click(within(dialog).getByRole('button', { name: 'Create key' }))
    const shown = await screen.findByTestId('issued-key')
    expect(shown).toHaveValue(KEY)
    expect(JSON.stringify(queryClient.getQueryCache().getAll().map((q) => q.state.data))).not.toContain(KEY)
    expect(JSON.stringify({ ...localStorage, ...sessionStorage })).not.toContain(KEY)
    await user.click(screen.getByRole('button', { name: 'I have stored it' }))
    await waitFor(() => expect(screen.queryByTestId('issued-key')).toBeNull())
    await screen.findByTestId('client-collector')
    expect(document.body.innerHTML).not.toContain(KEY)
  })

  it('asks for the node id of a dataplane key and shows the API error on it', async () => {
    mockApi({
      'GET /me': meAnswer(ADMIN_SCOPES),
      'GET /roles/scopes': { data: { resources: { dataplane: ['read', 'write', 'admin'] }, builtin_roles: {} } },
      'GET /clients': { data: [], meta: { total: 0 } },
      'POST /clients': { status: 422, error: { code: 'validation_error', message: 'bad', details: [{ loc: ['node_id'], msg: 'String should match pattern' }] } },
    })
    const user = userEvent.setup()
    renderPage(<ClientsPage />)
    await user.click(await screen.findByRole('button', { name: 'Create API client' }))
    const dialog = await screen.findByRole('dialog', { name: 'Create API client' })
    await user.type(within(dialog).getByLabelText('Name'), 'edge')
    await user.click(await within(dialog).findByLabelText('dataplane:write'))
    const node = within(dialog).getByLabelText('Node id the dataplane speaks for')
    expect(node).toBeRequired()
    await user.type(node, 'edge one')
    await user.click(within(dialog).getByRole('button', { name: 'Create key' }))
    await waitFor(() => expect(node).toHaveAccessibleDescription('String should match pattern'))
  })
})
