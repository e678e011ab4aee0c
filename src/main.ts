#!/usr/bin/env node
import { registerCommands, sshStdio } from './cli/index.js';

const args = process.argv.slice(2);
// the OpenSSH ProxyCommand runs once per connection: it starts without the command parser, the schemas or the server
if (args[0] === 'ssh' && args.includes('--stdio')) process.exit(await sshStdio(args.slice(1)));

const [{ Command, CommanderError }, { safeTerminalText }, { ConfigError, VERSION }] = await Promise.all([
  import('commander'),
  import('./domain/index.js'),
  import('./config/index.js'),
]);

const program = new Command('atrium')
  .description('Atrium: multi-tenant development environments for data-science teams')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();

await registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof ConfigError) {
    process.stderr.write(`atrium: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  const e = err as Error & { exitCode?: number; detail?: string };
  // messages can carry what a workspace printed (a failure reason) or what a server said: neither may drive the terminal
  process.stderr.write(`atrium: ${safeTerminalText(e.message)}\n${e.detail ?? ''}`);
  process.exit(e.exitCode ?? 1);
}
