/**
 * A Server-Sent Events stream the portal keeps open while a page shows it.
 * The browser reconnects by itself after a network error; a refusal (the
 * session ended, a proxy's error page) closes the stream for good, and then
 * `checkSession` runs (a 401 there sends the person to sign in) and the
 * stream is opened again, less and less often. Every (re)connection begins
 * with a `ready` event, on which the page fetches what it shows again.
 *
 * @returns a function that closes the stream for good
 */
export function openEventStream(
  url: string,
  opts: {
    listeners: Record<string, (m: MessageEvent<string>) => void>;
    onReady(): void;
    setConnected(connected: boolean): void;
    checkSession(): Promise<unknown>;
  },
): () => void {
  let source: EventSource | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let delay = 1000;
  let stopped = false;
  const connect = () => {
    source = new EventSource(url);
    source.addEventListener('ready', () => {
      delay = 1000;
      opts.setConnected(true);
      opts.onReady();
    });
    for (const [type, listener] of Object.entries(opts.listeners)) source.addEventListener(type, listener);
    source.onerror = () => {
      opts.setConnected(false);
      if (stopped || source?.readyState !== EventSource.CLOSED) return;
      void opts.checkSession().catch(() => undefined);
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30_000);
    };
  };
  connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    source?.close();
  };
}
