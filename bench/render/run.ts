/**
 * bench/render: what `atrium render kubernetes` costs the server for a large
 * platform, 1,000 teams of 10 workspaces: `renderYaml`, the pure renderers
 * (the cluster's objects, each team's and each workspace's) with Secrets
 * reduced to their metadata, written as one YAML stream a team at a time, as
 * the API serves it; and the same in steps over all objects at once. The
 * anchor, measured in the same run, is `JSON.stringify` of the same objects:
 * the least any serialization of them costs. No database and no server: what
 * the route adds to this is reading the store.
 *
 * With --package, also the `yaml` package's own writer over the same objects,
 * once (about 9 s), which Atrium's YAML writer must match byte for byte.
 *
 *   npx tsx bench/render/run.ts [--teams 1000] [--workspaces 10] [--runs 5] [--package]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { kubernetesRender, renderSettings, type TeamWithWorkspaces, type WorkspaceSpec } from '../../src/runtime/index.js';
import { hostProbeMs, watchForeignLoad } from '../lib/cpu.js';
import { REPO_ROOT } from '../lib/paths.js';

const { renderAll, renderYaml, toYaml, withoutSecretData } = kubernetesRender;

const argv = process.argv.slice(2);
if (argv.includes('--help')) {
  process.stdout.write('usage: npx tsx bench/render/run.ts [--teams N] [--workspaces N] [--runs N] [--package]\n');
  process.exit(0);
}
const opt = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? Number(argv[i + 1]) : fallback;
};
const TEAMS = opt('teams', 1000);
const PER_TEAM = opt('workspaces', 10);
const RUNS = opt('runs', 5);
const TARGET_MS = 1000;

// The settings as a server derives them from its config: one cluster with an a100 node pool, everything else default.
const config = loadConfig({
  env: {},
  flags: {
    'kubernetes.clusters': [
      { name: 'bench', gpuPools: [{ type: 'a100', nodeSelector: { 'atrium.dev/gpu': 'a100' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }] },
    ],
  },
});
const settings = renderSettings(config.kubernetes, config.kubernetes.clusters[0], { stopGraceSeconds: 10 });

/** An OpenSSH ed25519 private key's size and shape (the renderers only copy it and hash it). */
const hostKey = () => `-----BEGIN OPENSSH PRIVATE KEY-----\n${randomBytes(300).toString('base64').replace(/.{70}/g, '$&\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
const publicKey = () => `ssh-ed25519 ${randomBytes(51).toString('base64')}`;

/**
 * A plausible platform: teams of 10 members; per team one GPU workspace (a100) and
 * shell and Jupyter workspaces of the default profiles; every tenth team sensitive
 * (sandboxed workspaces); two in five workspaces running.
 */
function platform(): TeamWithWorkspaces[] {
  const teams: TeamWithWorkspaces[] = [];
  for (let t = 0; t < TEAMS; t++) {
    const team = `team-${t}`;
    const sensitive = t % 10 === 9;
    const members = Array.from({ length: 10 }, (_, m) => ({ username: `user-${t}-${m}`, role: m === 9 ? 'owner' : 'editor' }));
    const workspaces = Array.from({ length: PER_TEAM }, (_, w) => {
      const gpu = w === 0 && !sensitive;
      const shell = w % 3 === 2;
      const owner = members[w % members.length]!;
      const spec: WorkspaceSpec = {
        id: `w_${t.toString(36)}_${w.toString(36)}`,
        team,
        name: `lab-${w}`,
        owner: { id: `u_${t}_${w % members.length}`, username: owner.username },
        environment: { kind: shell ? 'shell' : 'jupyter' },
        tier: sensitive ? 'sandboxed' : 'standard',
        egress: gpu ? 'public' : 'none',
        cpu: gpu ? { requestMilli: 8000, limitMilli: 8000 } : { requestMilli: 1000, limitMilli: 2000 },
        memory: gpu ? { requestBytes: 64 * 2 ** 30, limitBytes: 64 * 2 ** 30 } : { requestBytes: 2 * 2 ** 30, limitBytes: 4 * 2 ** 30 },
        gpu: gpu ? { count: 1, type: 'a100' } : { count: 0, type: null },
        storageBytes: (gpu ? 100 : 10) * 2 ** 30,
        basePath: `/w/${team}/lab-${w}/`,
        ssh: {
          hostKey: hostKey(),
          authorizedKeys: [`restrict,pty,port-forwarding ${publicKey()}`, `restrict,pty,port-forwarding ${publicKey()} ${owner.username}`, `restrict,pty,port-forwarding ${publicKey()} ${owner.username}`],
        },
        agentForwarding: false,
        volumes: [],
      };
      return { spec, running: w % 5 < 2 };
    });
    teams.push({
      team: { name: team, sensitive, quota: { cpuMilli: 64_000, memoryBytes: 256 * 2 ** 30, storageBytes: 2 * 2 ** 40, workspaces: 20, gpus: { a100: 2 } }, members },
      workspaces,
    });
  }
  return teams;
}

interface Run {
  /** renderYaml: what the API serves, rendered and written a team at a time */
  servedMs: number;
  /** the same in steps, over all objects at once */
  renderMs: number;
  redactMs: number;
  yamlMs: number;
  /** the anchor: JSON.stringify of those objects */
  jsonMs: number;
  objects: number;
  yamlBytes: number;
  /** CPUs other processes used meanwhile (a busy machine skews every figure) */
  othersCpus: number | null;
}

function once(teams: TeamWithWorkspaces[]): Run {
  const others = watchForeignLoad(() => []);
  const t0 = performance.now();
  const served = renderYaml(settings, teams);
  const servedMs = performance.now() - t0;
  const t1 = performance.now();
  const objects = renderAll(settings, teams);
  const t2 = performance.now();
  const redacted = withoutSecretData(objects);
  const t3 = performance.now();
  const yaml = toYaml(redacted);
  const t4 = performance.now();
  const json = JSON.stringify(redacted);
  const t5 = performance.now();
  if (yaml !== served || json.length === 0) throw new Error('renderYaml and toYaml(renderAll) differ');
  return {
    servedMs, renderMs: t2 - t1, redactMs: t3 - t2, yamlMs: t4 - t3, jsonMs: t5 - t4, objects: objects.length, yamlBytes: Buffer.byteLength(served),
    othersCpus: others.stop()?.cpus ?? null,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const ms = (x: number, width = 6) => x.toFixed(0).padStart(width);

const teams = platform();
const probe = hostProbeMs();
// the first run in the process is what a server that renders rarely pays: the JIT compiles the renderers and the YAML writer meanwhile
const cold = once(teams);
const warm = Array.from({ length: RUNS }, () => once(teams));
const med = (k: 'servedMs' | 'renderMs' | 'redactMs' | 'yamlMs' | 'jsonMs') => median(warm.map((r) => r[k]));

const out = process.stdout;
out.write(`${TEAMS} teams × ${PER_TEAM} workspaces: ${cold.objects.toLocaleString('en')} objects, ${(cold.yamlBytes / 2 ** 20).toFixed(1)} MiB of YAML; probe ${probe.toFixed(0)} ms; Node ${process.versions.node}\n\n`);
out.write('run          served (renderYaml)   all at once: render  redact    YAML  JSON (anchor)  served/JSON  others\' CPUs\n');
out.write('-----------  -------------------  -------------------  ------  ------  -------------  -----------  ------------\n');
const row = (name: string, r: Omit<Run, 'objects' | 'yamlBytes'>) =>
  out.write(
    `${name.padEnd(11)}  ${ms(r.servedMs, 16)} ms  ${ms(r.renderMs, 16)} ms  ${ms(r.redactMs)}  ${ms(r.yamlMs)}  ${ms(r.jsonMs, 13)}  ${(r.servedMs / r.jsonMs).toFixed(1).padStart(10)}×` +
      `  ${(r.othersCpus === null ? '-' : r.othersCpus.toFixed(2)).padStart(12)}\n`,
  );
row('first', cold);
const busiest = warm.map((r) => r.othersCpus).reduce<number | null>((a, b) => (b === null ? a : Math.max(a ?? 0, b)), null);
row(`median of ${RUNS}`, { servedMs: med('servedMs'), renderMs: med('renderMs'), redactMs: med('redactMs'), yamlMs: med('yamlMs'), jsonMs: med('jsonMs'), othersCpus: busiest });
if ([cold.othersCpus, busiest].some((c) => c !== null && c > 0.1)) out.write('warning: other processes used more than 0.1 CPU during a run: its figures are skewed\n');
let packageMs: number | undefined;
if (argv.includes('--package')) {
  const objects = withoutSecretData(renderAll(settings, teams));
  const t0 = performance.now();
  const text = objects.map((o) => `---\n${stringify(o, { lineWidth: 0, sortMapEntries: false })}`).join('');
  packageMs = performance.now() - t0;
  if (text !== toYaml(objects)) throw new Error("the yaml package's text differs from toYaml's");
  out.write(`the yaml package writing the same objects: ${packageMs.toFixed(0)} ms, ${(packageMs / med('yamlMs')).toFixed(1)}× toYaml's median (the same text)\n`);
}
const verdict = (x: number) => `${x.toFixed(0)} ms: ${x < TARGET_MS ? 'PASS' : 'MISS'}`;
out.write(`\ntarget: the served YAML under ${TARGET_MS} ms; first run ${verdict(cold.servedMs)}, warm median ${verdict(med('servedMs'))}\n`);

const dir = join(REPO_ROOT, 'bench', 'out');
mkdirSync(dir, { recursive: true });
const file = join(dir, `render-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.json`);
writeFileSync(file, JSON.stringify({ teams: TEAMS, perTeam: PER_TEAM, probeMs: probe, cold, warm, packageMs, node: process.versions.node }, null, 2));
process.stderr.write(`results written to ${file}\n`);
