/** The browser proxy (design §4, §7): workspaces on their own origins behind Atrium's sign-in; the SSH gateway joins it. */
export { createProxy, type Proxy, type ProxyOptions } from './proxy.js';
