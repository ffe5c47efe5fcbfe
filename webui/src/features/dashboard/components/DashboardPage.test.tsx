import { describe, expect, it } from 'vitest'
import { act, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { installFakeStream, statsMessage } from '@/testing/fake-stream'
import { meAnswer, mockApi, VIEWER_SCOPES } from '@/testing/mock-api'
import { renderPage } from '@/testing/render'
import { LiveIndicator } from '@/components/layout/LiveIndicator'
import DashboardPage from './DashboardPage'

describe('DashboardPage', () => {
  it('shows a skeleton, then live numbers from the stream; pause freezes the view', async () => {
    mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES) })
    const { controller, last } = installFakeStream()
    controller.start()
    renderPage(
      <>
        <LiveIndicator />
        <DashboardPage />
      </>,
    )
    expect(await screen.findByRole('status', { name: 'Waiting for live data' })).toBeInTheDocument()
    const now = Date.now() / 1000
    act(() => last().receive(statsMessage(now, { packets: 1000, bps: 2_000_000, pps: 500 })))
    expect(await screen.findByText('2.00 Mb/s', { selector: 'div' })).toBeInTheDocument()
    expect(screen.getByTestId('live-indicator')).toHaveTextContent('Live')
    expect(screen.getByTestId('chart-bps-value')).toHaveTextContent('2.00 Mb/s')
    expect(screen.getByText('10.0.0.9')).toBeInTheDocument()
    expect(screen.getByText('ring_full')).toBeInTheDocument()
    await userEvent.setup().click(screen.getByRole('button', { name: 'Pause' }))
    act(() => last().receive(statsMessage(now + 1, { packets: 2000, bps: 4_000_000, pps: 900 })))
    expect(screen.getByTestId('chart-bps-value')).toHaveTextContent('2.00 Mb/s')
    expect(screen.queryByText('4.00 Mb/s', { selector: 'div' })).toBeNull()
    await userEvent.setup().click(screen.getByRole('button', { name: 'Resume' }))
    act(() => last().receive(statsMessage(now + 2, { packets: 3000, bps: 6_000_000, pps: 900 })))
    expect(screen.getByTestId('chart-bps-value')).toHaveTextContent('6.00 Mb/s')
    controller.stop()
  })

  it('keeps the time window for the tab (sessionStorage) and shows reconnecting', async () => {
    mockApi({ 'GET /me': meAnswer(VIEWER_SCOPES) })
    const { controller, last } = installFakeStream()
    controller.start()
    renderPage(
      <>
        <LiveIndicator />
        <DashboardPage />
      </>,
    )
    act(() => last().receive(statsMessage(Date.now() / 1000, { packets: 1, bps: 1, pps: 1 })))
    await userEvent.setup().click(await screen.findByRole('button', { name: '15 min' }))
    expect(sessionStorage.getItem('floe.dashboard.window')).toBe('15m')
    act(() => last().onclose?.({ code: 1006 } as CloseEvent))
    expect(screen.getByTestId('live-indicator')).toHaveTextContent(/Reconnecting in 1 s \(attempt 1\)/)
    controller.stop()
  })
})
