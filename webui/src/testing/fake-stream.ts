/** A stream controller on a fake WebSocket, installed as the app's singleton. */
import { configureStream, type SocketLike } from '@/lib/stream/store'

export class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null
  onclose: ((ev: CloseEvent) => void) | null = null
  onmessage: ((ev: MessageEvent) => void) | null = null
  onerror: ((ev: Event) => void) | null = null
  /** What the page sent (subscriptions), as text frames. */
  sent: string[] = []
  close() {}
  send(text: string) {
    this.sent.push(text)
  }
  open() {
    this.onopen?.(new Event('open'))
  }
  /** A message from the server. */
  receive(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
  }
}

export function installFakeStream() {
  const sockets: FakeSocket[] = []
  const controller = configureStream({
    createSocket: () => {
      const s = new FakeSocket()
      sockets.push(s)
      return s
    },
    url: () => 'ws://test',
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (id) => clearTimeout(id),
    now: () => Date.now(),
    random: () => 1,
    checkAuth: async () => true,
  })
  return { controller, sockets, last: () => sockets[sockets.length - 1] as FakeSocket }
}

export function statsMessage(ts: number, i: { packets: number; bps: number; pps: number; dropped?: number }) {
  return {
    type: 'stats',
    ts,
    data: {
      interfaces: [
        {
          node_id: 'vm', interface: 'eth0', mode: 'tap', attach_mode: 'native', packets: i.packets, bytes: i.packets * 100, passed: 0, redirected: i.packets,
          dropped: i.dropped ?? 0, malformed: 0, pps: i.pps, bps: i.bps, loss: { ring_full: 3 }, rule_hits: {}, counters: { tcp_packets: i.packets },
          traffic: { window_seconds: 10, packets: 10, bytes: 1000, protocols: [{ name: 'tcp', packets: 10, bytes: 1000 }], top_hosts_by_bytes: [{ host: '10.0.0.9', packets: 10, bytes: 1000 }], top_ports_by_bytes: [{ port: 443, packets: 10, bytes: 1000 }], approximate: false },
        },
      ],
      totals: { packets: i.packets, bytes: 0, dropped: 0, malformed: 0, pps: i.pps, bps: i.bps },
      nodes: { known: 1, connected: 1 },
      flows: { tracked: 7, evicted: 0 },
    },
    top_talkers: [],
  }
}
