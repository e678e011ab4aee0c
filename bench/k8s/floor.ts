import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { authorizedKeysOf, workspaceSpec } from '../../src/reconciler/index.js';
import { kubernetesRender, loadKubernetes, type RenderSettings, type TeamInput } from '../../src/runtime/index.js';
import type { Atrium } from './atrium.js';
import { runKubectl } from './cluster.js';

/**
 * The floor: what it takes to get the very objects Atrium applies for the
 * same workspaces into the cluster with `kubectl apply --server-side`, and
 * their pods Running, with nothing of Atrium in the way. The objects come
 * from Atrium's own renderers with the settings its runtime uses on this
 * cluster, for fresh teams shaped like the run's (same quota and members)
 * and workspaces like the run's (same profile, their own ids and keys).
 */

export interface FloorTeam {
  name: string;
  namespace: string;
  workspaces: string[];
  /** the team's tenant objects, then its workspaces', as one YAML stream */
  yaml: string;
  objects: number;
}

/** The render settings Atrium's runtime uses on the bench cluster (the writer as the cluster reported it to Atrium). */
export async function atriumRenderSettings(a: Atrium): Promise<RenderSettings> {
  const { renderSettings } = await loadKubernetes();
  const config = a.server.config;
  const cluster = config.kubernetes.clusters[0];
  return renderSettings(config.kubernetes, cluster, { writer: a.runtime.writer, stopGraceSeconds: Math.ceil(config.runtime.stopGraceMs / 1000) });
}

/**
 * Renders `teams` fresh teams of `perTeam` workspaces each, modelled on one of
 * Atrium's own teams and workspaces (`template`: team/workspace) from the run.
 */
export async function renderFloor(a: Atrium, template: { team: string; workspace: string }, teams: string[], perTeam: number): Promise<FloorTeam[]> {
  const settings = await atriumRenderSettings(a);
  const store = a.server.store;
  const team = await store.teams.byName(template.team);
  if (!team) throw new Error(`team ${template.team} not found`);
  const ws = await store.workspaces.byName(team.id, template.workspace);
  if (!ws) throw new Error(`workspace ${template.team}/${template.workspace} not found`);
  const members = (await store.teams.members(team.id)).map((m) => ({ username: m.username, role: m.role }));
  const keys = { hostPrivateKey: (id: string) => a.server.sshKeys.workspaceHost(id).privateKey, gatewayPublicKey: (id: string) => a.server.sshKeys.workspaceClient(id).publicKey };
  const authorizedKeys = authorizedKeysOf(store, keys);
  const out: FloorTeam[] = [];
  for (const name of teams) {
    const teamInput: TeamInput = { name, sensitive: team.sensitive, quota: team.quota, members };
    const workspaces = [];
    const names: string[] = [];
    for (let i = 0; i < perTeam; i++) {
      const wsName = `ws-${String(i).padStart(3, '0')}`;
      const copy = { ...ws, id: `w_${randomBytes(12).toString('base64url')}`, team: name, name: wsName };
      workspaces.push({ spec: workspaceSpec(copy, await authorizedKeys(copy), keys), running: true });
      names.push(wsName);
    }
    const objects = kubernetesRender.renderAll(settings, [{ team: teamInput, workspaces }], { clusterScope: false });
    out.push({ name, namespace: kubernetesRender.namespaceOf(settings, name), workspaces: names, yaml: kubernetesRender.toYaml(objects), objects: objects.length });
  }
  return out;
}

export interface FloorApply {
  /** per kubectl run: epoch ms it started and ended, the teams it applied, and how often it ran */
  runs: Array<{ teams: string[]; started: number; ended: number; attempts: number }>;
  /** kubectl runs that failed and were run again (e.g. a quota whose status the controller had not filled yet) */
  retries: number;
}

/**
 * Applies the teams with `parallel` runs of `kubectl apply --server-side`
 * at once, the teams dealt round-robin among them, each run one YAML stream
 * of its teams in turn (kubectl applies a stream's objects one after
 * another). A failed run is repeated, whole, up to four times.
 */
export async function applyFloor(kubectl: { path: string; kubeconfig: string; cacheDir: string }, teams: FloorTeam[], parallel: number): Promise<FloorApply> {
  mkdirSync(kubectl.cacheDir, { recursive: true });
  const now = () => performance.timeOrigin + performance.now();
  const result: FloorApply = { runs: [], retries: 0 };
  const streams = Array.from({ length: Math.min(parallel, teams.length) }, (_, i) => teams.filter((_t, j) => j % parallel === i));
  await Promise.all(
    streams.map(async (chunk) => {
      const started = now();
      const yaml = chunk.map((t) => t.yaml).join('');
      let attempts = 0;
      for (;;) {
        attempts++;
        try {
          await runKubectl(kubectl.path, kubectl.kubeconfig, ['apply', '--server-side', '--field-manager=atrium-floor', `--cache-dir=${kubectl.cacheDir}`, '-o', 'name', '-f', '-'], yaml);
          break;
        } catch (err) {
          if (attempts >= 5) throw err;
          result.retries++;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      result.runs.push({ teams: chunk.map((t) => t.name), started, ended: now(), attempts });
    }),
  );
  return result;
}

/** Fills kubectl's discovery cache so that no timed run pays for it. */
export async function warmKubectl(kubectl: { path: string; kubeconfig: string; cacheDir: string }): Promise<void> {
  mkdirSync(kubectl.cacheDir, { recursive: true });
  await runKubectl(kubectl.path, kubectl.kubeconfig, ['api-resources', `--cache-dir=${kubectl.cacheDir}`, '-o', 'name']);
  await runKubectl(kubectl.path, kubectl.kubeconfig, ['get', 'namespaces', `--cache-dir=${kubectl.cacheDir}`, '-o', 'name']);
}

export const floorCacheDir = (work: string) => join(work, 'kubectl-cache');
