import type { Command } from 'commander';

export { sshStdio } from './ssh-stdio.js';
export { serverEvents, type ServerEvent } from './sse.js';

/** Adds every command; each group's modules load here, so `atrium ssh --stdio` (which needs none of them) starts without them. */
export async function registerCommands(program: Command): Promise<void> {
  const [{ registerServe }, { registerAccount }, { registerWorkspaces }, { registerAdmin }, { registerSsh }, { registerRender }, { registerImages }, { registerVolumes }, { registerIdentity }] = await Promise.all([
    import('./serve.js'),
    import('./account.js'),
    import('./workspaces.js'),
    import('./admin.js'),
    import('./ssh.js'),
    import('./render.js'),
    import('./images.js'),
    import('./volumes.js'),
    import('./identity.js'),
  ]);
  registerServe(program);
  registerAccount(program);
  registerWorkspaces(program);
  registerSsh(program);
  registerAdmin(program);
  registerVolumes(program);
  registerImages(program);
  registerIdentity(program);
  registerRender(program);
}
