import { describe, expect, it } from 'vitest'
import { act, screen, waitFor, within } from '@testing-library/react'
import { installFakeStream, statsMessage } from '@/testing/fake-stream'
import userEvent from '@testing-library/user-event'
import { ADMIN_SCOPES, meAnswer, mockApi, VIEWER_SCOPES } from '@/testing/mock-api'
import { renderPage } from '@/testing/render'
import RulesPage from './RulesPage'

const ruleSet = { data: { generation: 3, default_action: 'allow', rules: [{ id: 1, action: 'deny', src: '10.77.0.0/24' }] } }
const nodes = { data: [{ node_id: 'vm', connected: true, rules_generation_applied: 2, rules_error: null, loss: {}, interfaces: [], capabilities: [], last_seen: 1 }] }

describe('RulesPage', () => {
  it('gives a viewer the rule set and no write control', async () => {
    mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES), 'GET /rules': ruleSet, 'GET /nodes': nodes })
    renderPage(<RulesPage />)
    await screen.findByTestId('rule-1')
    expect(screen.queryByRole('button', { name: /Add rule|Edit rule|Delete rule/ })).toBeNull()
    expect(screen.queryByLabelText(/Default action/)).toBeNull()
    expect(screen.getByText(/Default action/)).toHaveTextContent('allow')
  })

  it('puts the API validation error on the field of the edited rule', async () => {
    const { sent } = mockApi({
      'GET /me': meAnswer(ADMIN_SCOPES),
      'GET /rules': ruleSet,
      'GET /nodes': nodes,
      'PUT /rules': { status: 422, error: { code: 'validation_error', message: 'Request body failed validation', details: [{ loc: ['rules', 1, 'port'], msg: 'Input should be less than or equal to 65535' }] } },
    })
    const user = userEvent.setup()
    renderPage(<RulesPage />)
    await user.click(await screen.findByRole('button', { name: 'Add rule' }))
    const dialog = await screen.findByRole('dialog', { name: 'Add rule' })
    await user.selectOptions(within(dialog).getByLabelText('Match'), 'port')
    await user.type(within(dialog).getByLabelText('Port'), '99999')
    await user.click(within(dialog).getByRole('button', { name: 'Save rule' }))
    const port = within(dialog).getByLabelText('Port')
    await waitFor(() => expect(port).toHaveAttribute('aria-invalid', 'true'))
    expect(port).toHaveAccessibleDescription('Input should be less than or equal to 65535')
    const put = sent.find((s) => s.method === 'PUT')
    expect(put?.body).toEqual({ default_action: 'allow', rules: [{ id: 1, action: 'deny', src: '10.77.0.0/24' }, { id: 2, action: 'deny', port: 99999, direction: 'dst' }] })
  })

  it('maps an invalid_rule answer naming the rule onto its value', async () => {
    mockApi({
      'GET /me': meAnswer(ADMIN_SCOPES),
      'GET /rules': ruleSet,
      'GET /nodes': nodes,
      'PUT /rules': { status: 422, error: { code: 'invalid_rule', message: "rule 2: bad CIDR '10.0.0.300/8'" } },
    })
    const user = userEvent.setup()
    renderPage(<RulesPage />)
    await user.click(await screen.findByRole('button', { name: 'Add rule' }))
    const dialog = await screen.findByRole('dialog', { name: 'Add rule' })
    await user.type(within(dialog).getByLabelText('Source CIDR'), '10.0.0.300/8')
    await user.click(within(dialog).getByRole('button', { name: 'Save rule' }))
    await waitFor(() => expect(within(dialog).getByLabelText('Source CIDR')).toHaveAccessibleDescription("rule 2: bad CIDR '10.0.0.300/8'"))
  })

  it('counts hits live from the stream ({packets, bytes} per rule id, summed over interfaces)', async () => {
    mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES), 'GET /rules': ruleSet, 'GET /nodes': nodes })
    const { controller, last } = installFakeStream()
    controller.start()
    renderPage(<RulesPage />)
    await screen.findByTestId('rule-1')
    const message = statsMessage(Date.now() / 1000, { packets: 10, bps: 1, pps: 1 })
    message.data.interfaces[0]!.rule_hits = { '1': { packets: 42, bytes: 4200 } } as never
    act(() => last().receive(message))
    expect(screen.getByTestId('rule-hits-1')).toHaveTextContent('42')
    controller.stop()
  })

  it('shows what each node acknowledged', async () => {
    mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES), 'GET /rules': ruleSet, 'GET /nodes': nodes })
    renderPage(<RulesPage />, { at: '/?tab=acks' })
    expect(await screen.findByText('pending (has 2)')).toBeInTheDocument()
  })
})
