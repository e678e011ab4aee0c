#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerCommands } from './cli/index.js';
import { safeTerminalText } from './domain/index.js';
import { ConfigError, VERSION } from './config/index.js';

const program = new Command('atrium')
  .description('Atrium: multi-tenant development environments for data-science teams')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);

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
