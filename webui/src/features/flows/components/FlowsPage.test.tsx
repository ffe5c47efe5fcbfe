import { describe, expect, it } from 'vitest'
import { act, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { installFakeStream } from '@/testing/fake-stream'
import { meAnswer, mockApi, VIEWER_SCOPES } from '@/testing/mock-api'
import { renderPage } from '@/testing/render'
import FlowsPage from './FlowsPage'

const event = (cursor: number, src: string, port: number) => ({
  cursor, node_id: 'edge-1', time_unix_ns: Date.now() * 1e6, type: 'flow', kind: 'new', interface: 'eth0', src, dst: '10.9.9.9', src_port: 40000, dst_port: port, proto: 6, ip_version: 4, vlan: 0,
  packets_ab: 3, bytes_ab: 180, packets_ba: 2, bytes_ba: 120, packets: 5, bytes: 300, delta_packets: 5, delta_bytes: 300, first_seen_unix_ns: cursor * 1e6, last_seen_unix_ns: Date.now() * 1e6, tcp_flags: 18, state: 'established', end_reason: 'none', verdict: 'forwarded',
})

const subscriptions = (sent: string[]) => sent.map((t) => JSON.parse(t) as { type: string; id: string; filter: Record<string, unknown> }).filter((m) => m.type === 'subscribe')

describe('FlowsPage', () => {
  it('follows the subscription: rows from events, losses shown, a refused chip says why', async () => {
    const http = mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES) })
    const { controller, last } = installFakeStream()
    controller.start()
    act(() => last().open())
    renderPage(<FlowsPage />, { path: '/flows', at: '/flows?port=443' })
    await waitFor(() => expect(subscriptions(last().sent)).toHaveLength(1))
    const [first] = subscriptions(last().sent)
    expect(first?.filter).toEqual({ number: 200, allow: [{ port: [443] }] })
    act(() => last().receive({ type: 'subscribed', id: first?.id, topic: 'flows' }))
    expect(await screen.findByTestId('flows-status')).toHaveTextContent('following live')
    act(() => last().receive({ type: 'flows', id: first?.id, lost: 12, events: [event(1, '10.0.0.1', 443), event(2, '10.0.0.2', 443)] }))
    const body = await screen.findByTestId('flows-body')
    await waitFor(() => expect(within(body).getAllByTestId('flow-src').map((c) => c.textContent)).toEqual(['10.0.0.2:40000', '10.0.0.1:40000']))
    expect(screen.getByTestId('flows-lost')).toHaveTextContent('12 dropped because this page read too slowly')

    // A second chip the server refuses: the refusal lands on that chip.
    const user = userEvent.setup()
    await user.selectOptions(screen.getByLabelText('Filter'), 'proto')
    await user.type(screen.getByLabelText('Value'), 'nonsense')
    await user.click(screen.getByRole('button', { name: 'Add filter' }))
    await waitFor(() => expect(subscriptions(last().sent)).toHaveLength(2))
    const second = subscriptions(last().sent)[1]
    expect(second?.filter).toEqual({ number: 200, allow: [{ port: [443], protocol: ['nonsense'] }] })
    act(() => last().receive({ type: 'error', id: second?.id, error: { code: 'invalid_filter', message: "allow[0].protocol: 'nonsense' is not a protocol", field: 'filter.allow[0].protocol' } }))
    expect(await screen.findByTestId('chip-error-proto')).toHaveTextContent("'nonsense' is not a protocol")
    expect(screen.queryByTestId('chip-error-port')).toBeNull()
    expect(screen.getByTestId('flows-status')).toHaveTextContent('refused')
    expect(http.sent.filter((s) => s.url === '/flows').map((s) => s.params)).toEqual([]) // following never polls
    controller.stop()
  })
})
