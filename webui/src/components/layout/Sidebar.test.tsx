import { describe, expect, it } from 'vitest'
import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { ADMIN_SCOPES, meAnswer, mockApi, VIEWER_SCOPES } from '@/testing/mock-api'
import { renderPage } from '@/testing/render'
import { Sidebar } from './Sidebar'

describe('Sidebar (navigation follows scopes)', () => {
  it('shows the yellow admin section to an admin, collapsible', async () => {
    mockApi({ 'GET /me': meAnswer(ADMIN_SCOPES) })
    renderPage(<Sidebar />, { path: '/dashboard' })
    const users = await screen.findByRole('link', { name: 'Users' })
    expect(users.className).toMatch(/yellow/)
    expect(screen.getByRole('link', { name: 'Dashboard' })).toHaveAttribute('aria-current', 'page')
    const header = screen.getByRole('button', { name: /Administration/ })
    expect(header).toHaveAttribute('aria-expanded', 'true')
    await userEvent.setup().click(header)
    expect(header).toHaveAttribute('aria-expanded', 'false')
    expect(screen.queryByRole('link', { name: 'Users' })).toBeNull()
  })

  it('gives a viewer no administration at all', async () => {
    mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES) })
    renderPage(<Sidebar />, { path: '/dashboard' })
    const nav = await screen.findByRole('navigation', { name: 'Main' })
    await within(nav).findByRole('link', { name: 'Rules' })
    expect(within(nav).queryByText('Administration')).toBeNull()
    for (const name of ['Users', 'Roles', 'Teams', 'API clients', 'Audit log']) expect(within(nav).queryByRole('link', { name })).toBeNull()
  })

  it('shows a node-granted user the node views but not the global ones', async () => {
    mockApi({ 'GET /me': meAnswer([], { node_scopes: { 'edge-1': ['stats:read', 'flows:read', 'dataplane:read', 'rules:read'] } }) })
    renderPage(<Sidebar />, { path: '/dashboard' })
    await screen.findByRole('link', { name: 'Dashboard' })
    expect(screen.getByRole('link', { name: 'Flows' })).toBeInTheDocument()
    expect(screen.getByRole('link', { name: 'Nodes & interfaces' })).toBeInTheDocument()
    expect(screen.queryByRole('link', { name: 'Rules' })).toBeNull() // rules:read is global-only
  })
})
