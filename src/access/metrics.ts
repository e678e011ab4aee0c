/** Proxy metrics in the Prometheus text format (served at /metrics). */

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function createProxyMetrics() {
  /** status class ("2xx" …) → count */
  const requests = new Map<string, number>();
  let bytesIn = 0;
  let bytesOut = 0;
  const buckets = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  let latencyCount = 0;
  let latencySum = 0;
  /** "team/ws" → open WebSockets */
  const sockets = new Map<string, number>();
  let upgrades = 0;

  return {
    /** one proxied request, with the seconds until the workspace's response headers */
    request(status: number, seconds: number): void {
      const cls = `${Math.floor(status / 100)}xx`;
      requests.set(cls, (requests.get(cls) ?? 0) + 1);
      latencyCount++;
      latencySum += seconds;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        if (seconds <= LATENCY_BUCKETS[i]!) {
          buckets[i]!++;
          break;
        }
      }
    },
    bytes(inbound: number, outbound: number): void {
      bytesIn += inbound;
      bytesOut += outbound;
    },
    socketOpened(key: string): void {
      upgrades++;
      sockets.set(key, (sockets.get(key) ?? 0) + 1);
    },
    socketClosed(key: string): void {
      const n = (sockets.get(key) ?? 1) - 1;
      if (n <= 0) sockets.delete(key);
      else sockets.set(key, n);
    },
    render(): string {
      const out: string[] = [];
      out.push('# HELP atrium_proxy_requests_total HTTP requests proxied to workspaces, by response status class.');
      out.push('# TYPE atrium_proxy_requests_total counter');
      for (const [cls, n] of [...requests].sort()) out.push(`atrium_proxy_requests_total{code="${cls}"} ${n}`);
      out.push('# HELP atrium_proxy_received_bytes_total Bytes of request bodies and WebSocket traffic from clients to workspaces.');
      out.push('# TYPE atrium_proxy_received_bytes_total counter');
      out.push(`atrium_proxy_received_bytes_total ${bytesIn}`);
      out.push('# HELP atrium_proxy_sent_bytes_total Bytes of response bodies and WebSocket traffic from workspaces to clients.');
      out.push('# TYPE atrium_proxy_sent_bytes_total counter');
      out.push(`atrium_proxy_sent_bytes_total ${bytesOut}`);
      out.push('# HELP atrium_proxy_response_seconds Time from a request reaching Atrium to the workspace answering with headers.');
      out.push('# TYPE atrium_proxy_response_seconds histogram');
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        cumulative += buckets[i]!;
        out.push(`atrium_proxy_response_seconds_bucket{le="${LATENCY_BUCKETS[i]}"} ${cumulative}`);
      }
      out.push(`atrium_proxy_response_seconds_bucket{le="+Inf"} ${latencyCount}`);
      out.push(`atrium_proxy_response_seconds_sum ${latencySum}`);
      out.push(`atrium_proxy_response_seconds_count ${latencyCount}`);
      out.push('# HELP atrium_proxy_websocket_upgrades_total WebSockets opened to workspaces.');
      out.push('# TYPE atrium_proxy_websocket_upgrades_total counter');
      out.push(`atrium_proxy_websocket_upgrades_total ${upgrades}`);
      out.push('# HELP atrium_proxy_open_websockets WebSockets open now, per workspace.');
      out.push('# TYPE atrium_proxy_open_websockets gauge');
      for (const [key, n] of [...sockets].sort()) {
        const [team, name] = key.split('/');
        out.push(`atrium_proxy_open_websockets{team="${escapeLabel(team!)}",workspace="${escapeLabel(name!)}"} ${n}`);
      }
      return `${out.join('\n')}\n`;
    },
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
