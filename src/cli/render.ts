import type { Static } from '@sinclair/typebox';
import { Option, type Command } from 'commander';
import type { schemas } from '../api/contract.js';
import { type ApiClient, CliError, signedIn } from './client.js';
import { toJson } from './output.js';

type ClusterView = Static<typeof schemas.ClusterView>;
type ClusterObjectList = Static<typeof schemas.ClusterObjectList>;

/** The cluster to render when none is named: the server's one Kubernetes cluster. */
async function onlyCluster(client: ApiClient): Promise<string> {
  const { items } = await client.get<{ items: ClusterView[] }>('/api/v1/clusters');
  const kube = items.filter((c) => c.kind === 'kubernetes').map((c) => c.name);
  if (kube.length === 1) return kube[0]!;
  if (kube.length > 1) throw new CliError(`this server runs workspaces on several clusters; name one with --cluster (${kube.join(', ')})`, 2);
  throw new CliError('this server runs workspaces on this machine, not on Kubernetes; name a cluster of its kubernetes.clusters config with --cluster', 2);
}

/** `atrium render kubernetes`: what Atrium applies to a cluster, printed for GitOps. */
export function registerRender(program: Command): void {
  const render = program.command('render').description('print the objects Atrium manages elsewhere, for GitOps (admins)');
  render
    .command('kubernetes')
    .description(
      'print the objects Atrium applies to a Kubernetes cluster, rendered by the server without contacting the cluster: ' +
        "the cluster-scoped ones, then each team's namespace, quota, policies and workspaces (stopped ones with 0 replicas). " +
        'Workspace Secrets come without their data (the sshd host keys and app tokens, which Atrium writes when it starts a workspace) unless --secrets',
    )
    .option('--team <team>', "only this team's objects (no cluster-scoped ones)")
    .option('--cluster <name>', "a cluster of the server's kubernetes.clusters (default: the one it runs workspaces on)")
    .option('--secrets', 'include the Secrets\' data: every workspace\'s private SSH host key and app token (keep the output out of version control)')
    .addOption(new Option('-o, --output <format>', 'a YAML stream for `kubectl apply -f -`, or a JSON List').choices(['yaml', 'json']).default('yaml'))
    .action(async (opts: { team?: string; cluster?: string; secrets?: boolean; output: 'yaml' | 'json' }) => {
      const { client } = signedIn();
      const cluster = opts.cluster ?? (await onlyCluster(client));
      const query = new URLSearchParams();
      if (opts.team) query.set('team', opts.team);
      if (opts.secrets) query.set('secrets', 'true');
      const path = `/api/v1/clusters/${encodeURIComponent(cluster)}/objects`;
      if (opts.output === 'json') {
        process.stdout.write(toJson(await client.get<ClusterObjectList>(`${path}?${query.toString()}`)) + '\n');
        return;
      }
      query.set('format', 'yaml');
      const res = await client.raw('GET', `${path}?${query.toString()}`);
      process.stdout.write(await res.text());
    });
}
