import type { RenderSettings, TeamInput, WorkspaceSpec } from '../../src/runtime/index.js';

/** The settings, team and workspaces the renderers' golden files and the control-plane tests share. */
export const SETTINGS: RenderSettings = {
  namespacePrefix: 'atrium-',
  writer: 'system:serviceaccount:atrium:atrium',
  atriumPods: { namespace: 'atrium', labels: { 'app.kubernetes.io/name': 'atrium' } },
  ingressCidrs: [],
  defaultImage: 'registry.example/atrium/workspace:1.0',
  storageClass: null,
  volumeStorageClass: null,
  sandboxed: { runtimeClass: 'atrium-sandboxed', handler: 'kata', overhead: { cpu: '250m', memory: '160Mi' } },
  tokenAudiences: ['atrium', 'sts.example.com'],
  tokenExpirationSeconds: 3600,
  mesh: null,
  memberReadOnly: null,
  gpuPools: [{ type: 'a100', nodeSelector: { 'atrium.dev/gpu': 'a100' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }],
  nodeSelector: {},
  tolerations: [],
  stopGraceSeconds: 10,
};

export const HOST_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtest\n-----END OPENSSH PRIVATE KEY-----\n';

export function workspaceSpec(over: Partial<WorkspaceSpec> = {}): WorkspaceSpec {
  return {
    id: 'w_0001-x_',
    team: 'ml',
    name: 'lab',
    owner: { id: 'u_0001', username: 'ada' },
    environment: { kind: 'jupyter' },
    tier: 'standard',
    egress: 'none',
    cpu: { requestMilli: 1000, limitMilli: 2000 },
    memory: { requestBytes: 2 * 2 ** 30, limitBytes: 4 * 2 ** 30 },
    gpu: { count: 0, type: null },
    storageBytes: 10 * 2 ** 30,
    basePath: '/w/ml/lab/',
    ssh: { hostKey: HOST_KEY, authorizedKeys: ['restrict,pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIgateway atrium-gateway'] },
    agentForwarding: false,
    volumes: [],
    ...over,
  };
}

export const TEAM: TeamInput = {
  name: 'ml',
  sensitive: false,
  quota: { cpuMilli: 16000, memoryBytes: 64 * 2 ** 30, storageBytes: 500 * 2 ** 30, workspaces: 10, gpus: { a100: 2, t4: 4 } },
  members: [{ username: 'grace', role: 'editor' }, { username: 'ada', role: 'owner' }],
};

