import type { Static } from '@sinclair/typebox';
import type { Command } from 'commander';
import type { schemas } from '../api/contract.js';
import { signedIn } from './client.js';
import { print, table } from './output.js';
import { confirm } from './prompt.js';

type WorkloadIdentityView = Static<typeof schemas.WorkloadIdentityView>;

function describe(v: WorkloadIdentityView): string {
  const lines = [
    `issuer:         ${v.issuer}  (discovery: ${v.issuer}/.well-known/openid-configuration)`,
    `audiences:      ${v.audiences.join(', ')}`,
    `token lifetime: ${v.tokenLifetimeSeconds}s, replaced at 80%`,
    `key rotation:   every ${v.keyRotationSeconds}s`,
    `tokens:         ${v.tokensFromAtrium ? 'issued by Atrium to running workspaces, at /var/run/secrets/atrium/token' : "none from this issuer: Kubernetes workspaces hold their cluster's projected service-account tokens (and without a runtime nothing runs)"}`,
    '',
  ];
  const rows = v.keys.map((k) => [k.kid, k.state, k.createdAt, k.activatedAt ?? '-', k.state === 'retired' ? `published until ${k.expiresAt}` : '']);
  return lines.join('\n') + table(['KEY', 'STATE', 'CREATED', 'SIGNING SINCE', ''], rows);
}

/** `atrium identity`: Atrium as the issuer of workspaces' workload tokens (admins). */
export function registerIdentity(program: Command): void {
  const identity = program.command('identity').description("workload identity: the issuer of workspaces' tokens and its signing keys (admins)");
  identity
    .command('show', { isDefault: true })
    .description('issuer, audiences, lifetimes and signing keys')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const v = await signedIn().client.get<WorkloadIdentityView>('/api/v1/workload-identity');
      print(opts.json, v, () => describe(v));
    });
  identity
    .command('rotate')
    .description('rotate the signing key now: the next key signs, the current one stays published until its last token expires')
    .option('-y, --yes', 'do not ask')
    .option('--json', 'print JSON')
    .action(async (opts: { yes?: boolean; json?: boolean }) => {
      await confirm('Rotate the workload identity signing key now?', opts.yes);
      const v = await signedIn().client.post<WorkloadIdentityView>('/api/v1/workload-identity/rotate');
      print(opts.json, v, () => `Rotated: ${v.keys.find((k) => k.state === 'signing')?.kid} signs now.\n\n${describe(v)}`);
    });
}
