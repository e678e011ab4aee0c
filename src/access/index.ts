/** The browser proxy (design §4, §7): workspaces on their own origins behind Atrium's sign-in; and SSH into workspaces: the gateway and the tunnel. */
export { createProxy, type Proxy, type ProxyOptions } from './proxy.js';
export { createSshAccess, type SshAccess, type SshAccessOptions } from './ssh.js';
export { createSshMetrics, type SshMetrics } from './ssh-sessions.js';
