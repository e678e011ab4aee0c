import type { Command } from 'commander';
import { registerAccount } from './account.js';
import { registerAdmin } from './admin.js';
import { registerServe } from './serve.js';
import { registerWorkspaces } from './workspaces.js';

export function registerCommands(program: Command): void {
  registerServe(program);
  registerAccount(program);
  registerWorkspaces(program);
  registerAdmin(program);
}
