import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { ERROR_CODES, isErrorCode } from '../src/domain/index.js';
import { databaseKinds, startServer, type TestServer } from './helpers.js';
import { newPublicKey } from './keys.js';

/**
 * Walks every route the HTTP router holds, as every kind of person, and checks
 * both the permission decision and the audit trail: each mutating request,
 * allowed or refused, leaves exactly one audit row naming its action.
 */
const PERSONAS = ['anonymous', 'viewer', 'editor', 'owner', 'otherOwner', 'admin'] as const;
type Persona = (typeof PERSONAS)[number];

const USERS: Record<Exclude<Persona, 'anonymous' | 'admin'>, string> = {
  viewer: 'ml-viewer',
  editor: 'ml-editor',
  owner: 'ml-owner',
  otherOwner: 'cv-owner',
};

const ALL: Persona[] = [...PERSONAS];
const SIGNED_IN: Persona[] = ['viewer', 'editor', 'owner', 'otherOwner', 'admin'];
const MEMBERS: Persona[] = ['viewer', 'editor', 'owner', 'admin'];
const WS_OPERATORS: Persona[] = ['editor', 'owner', 'admin'];
const ADMIN: Persona[] = ['admin'];

interface Case {
  path?: string;
  body?: unknown;
  /** a token to use instead of the persona's usual one */
  token?: string;
}

interface Entry {
  allow: Persona[];
  /** statuses that count as "let through" besides 2xx (a refusal for other reasons than authorization) */
  alsoAllowed?: number[];
  /** builds the request for one persona; fresh resources for destructive calls */
  prepare?: (p: Persona, w: World) => Promise<Case>;
}

interface World {
  t: TestServer;
  tokens: Record<Persona, string | undefined>;
  n: () => number;
  freshTeam(): Promise<string>;
  freshWorkspace(team?: string): Promise<string>;
}

const tokenOf = (w: World, p: Persona) => w.tokens[p];

/** The permission table: every route, who may use it. */
const TABLE: Record<string, Entry> = {
  'GET /healthz': { allow: ALL },
  'GET /api/v1/openapi.json': { allow: ALL },
  'POST /api/v1/auth/login': { allow: ALL, prepare: async () => ({ body: { username: 'ml-viewer', password: 'pw-ml-viewer-secret' } }) },
  'POST /api/v1/auth/logout': {
    allow: SIGNED_IN,
    prepare: async (p, w) => {
      if (p === 'anonymous') return {};
      const username = p === 'admin' ? 'admin' : USERS[p];
      const password = p === 'admin' ? 'admin-password-for-tests' : `pw-${username}-secret`;
      const r = await w.t.call('POST', '/api/v1/auth/login', { body: { username, password, token: { name: 'throwaway' } } });
      return { token: r.body.token };
    },
  },
  'GET /api/v1/auth/providers': { allow: ALL },
  'GET /.well-known/openid-configuration': { allow: ALL },
  'GET /.well-known/jwks.json': { allow: ALL },
  'GET /api/v1/workload-identity': { allow: ADMIN },
  'POST /api/v1/workload-identity/rotate': { allow: ADMIN },
  // this server configures no identity provider: whoever asks, the provider is not found
  'GET /api/v1/auth/oidc/:provider/login': { allow: ALL, alsoAllowed: [404] },
  'GET /api/v1/auth/oidc/:provider/callback': { allow: ALL, alsoAllowed: [404] },
  'POST /api/v1/auth/cli-logins': { allow: ALL, prepare: async () => ({ body: { name: 'walk' } }) },
  'POST /api/v1/auth/cli-logins/poll': { allow: ALL, prepare: async () => ({ body: { pollSecret: 'x'.repeat(43) } }) },
  // a signed-in person approving a code nobody shows: not found
  'POST /api/v1/auth/cli-logins/approve': { allow: SIGNED_IN, alsoAllowed: [404], prepare: async () => ({ body: { code: 'BCDF-GHJK' } }) },
  'GET /api/v1/me': { allow: SIGNED_IN },
  'PUT /api/v1/me/password': {
    allow: ['viewer', 'editor', 'owner', 'otherOwner', 'admin'],
    prepare: async (p) => {
      const username = p === 'admin' ? 'admin' : p === 'anonymous' ? 'x' : USERS[p];
      const password = p === 'admin' ? 'admin-password-for-tests' : `pw-${username}-secret`;
      return { body: { current: password, password } };
    },
  },
  'GET /api/v1/me/tokens': { allow: SIGNED_IN },
  'POST /api/v1/me/tokens': { allow: SIGNED_IN, prepare: async () => ({ body: { name: 'walk', expiresIn: '1h' } }) },
  'DELETE /api/v1/me/tokens/:id': {
    allow: SIGNED_IN,
    prepare: async (p, w) => {
      const owner = p === 'anonymous' ? 'editor' : p;
      const r = await w.t.call('POST', '/api/v1/me/tokens', { token: tokenOf(w, owner), body: { name: 'to-revoke' } });
      return { path: `/api/v1/me/tokens/${r.body.info.id}` };
    },
  },
  'GET /api/v1/me/ssh-keys': { allow: SIGNED_IN },
  'GET /api/v1/me/ssh': { allow: SIGNED_IN },
  'POST /api/v1/me/ssh-keys': { allow: SIGNED_IN, prepare: async () => ({ body: { publicKey: newPublicKey() } }) },
  'DELETE /api/v1/me/ssh-keys/:id': {
    allow: SIGNED_IN,
    prepare: async (p, w) => {
      const owner = p === 'anonymous' ? 'editor' : p;
      const r = await w.t.call('POST', '/api/v1/me/ssh-keys', { token: tokenOf(w, owner), body: { publicKey: newPublicKey() } });
      return { path: `/api/v1/me/ssh-keys/${r.body.id}` };
    },
  },
  'GET /api/v1/users': { allow: ADMIN },
  'POST /api/v1/users': { allow: ADMIN, prepare: async (_p, w) => ({ body: { username: `new-user-${w.n()}` } }) },
  'GET /api/v1/users/:user': { allow: ['editor', 'admin'] },
  'PATCH /api/v1/users/:user': { allow: ADMIN, prepare: async () => ({ body: { displayName: 'Editor' } }) },
  'GET /api/v1/teams': { allow: SIGNED_IN },
  'POST /api/v1/teams': { allow: ADMIN, prepare: async (_p, w) => ({ body: { name: `new-team-${w.n()}` } }) },
  'GET /api/v1/teams/:team': { allow: MEMBERS },
  'PATCH /api/v1/teams/:team': { allow: ADMIN, prepare: async () => ({ body: { displayName: 'Machine learning' } }) },
  'DELETE /api/v1/teams/:team': { allow: ADMIN, prepare: async (_p, w) => ({ path: `/api/v1/teams/${await w.freshTeam()}` }) },
  'GET /api/v1/teams/:team/members': { allow: MEMBERS },
  'PUT /api/v1/teams/:team/members/:user': {
    allow: ['owner', 'admin'],
    prepare: async (_p, w) => ({ path: `/api/v1/teams/${await w.freshTeam()}/members/outsider`, body: { role: 'viewer' } }),
  },
  'DELETE /api/v1/teams/:team/members/:user': {
    allow: ['owner', 'admin'],
    prepare: async (_p, w) => ({ path: `/api/v1/teams/${await w.freshTeam()}/members/ml-viewer` }),
  },
  'GET /api/v1/teams/:team/quota': { allow: MEMBERS },
  'PATCH /api/v1/teams/:team/quota': { allow: ADMIN, prepare: async () => ({ body: { workspaces: 1000 } }) },
  'GET /api/v1/teams/:team/usage': { allow: MEMBERS },
  'GET /api/v1/teams/:team/events': { allow: MEMBERS },
  'GET /api/v1/events': { allow: SIGNED_IN },
  'GET /api/v1/workspaces': { allow: SIGNED_IN },
  'GET /api/v1/teams/:team/workspaces': { allow: MEMBERS },
  'POST /api/v1/teams/:team/workspaces': {
    allow: WS_OPERATORS,
    prepare: async (_p, w) => ({ body: { name: `made-${w.n()}`, profile: 'small', start: false } }),
  },
  'GET /api/v1/teams/:team/workspaces/:ws': { allow: MEMBERS },
  'PATCH /api/v1/teams/:team/workspaces/:ws': { allow: WS_OPERATORS, prepare: async () => ({ body: { shared: false } }) },
  'DELETE /api/v1/teams/:team/workspaces/:ws': {
    allow: WS_OPERATORS,
    prepare: async (_p, w) => ({ path: `/api/v1/teams/ml/workspaces/${await w.freshWorkspace()}` }),
  },
  'POST /api/v1/teams/:team/workspaces/:ws/start': { allow: WS_OPERATORS },
  'POST /api/v1/teams/:team/workspaces/:ws/stop': { allow: WS_OPERATORS },
  'GET /api/v1/teams/:team/workspaces/:ws/events': { allow: MEMBERS },
  // the SSH tunnel is an upgrade: a plain GET by someone with the connect right (wsx's owner alone) is told so with 426
  'GET /api/v1/teams/:team/workspaces/:ws/ssh': { allow: ['editor'], alsoAllowed: [426] },
  // these servers run without a runtime, so an authorized request gets 409 no_runtime
  'GET /api/v1/teams/:team/workspaces/:ws/logs': { allow: WS_OPERATORS, alsoAllowed: [409] },
  'GET /api/v1/profiles': { allow: SIGNED_IN },
  'GET /api/v1/profiles/:profile': { allow: SIGNED_IN },
  'GET /api/v1/clusters': { allow: SIGNED_IN },
  'GET /api/v1/clusters/:cluster/objects': { allow: ADMIN },

  'GET /api/v1/gpu-pools': { allow: SIGNED_IN },
  'POST /api/v1/gpu-pools': { allow: ADMIN, prepare: async (_p, w) => ({ body: { name: `pool-${w.n()}`, gpuType: 'a100', size: 4 } }) },
  'GET /api/v1/gpu-pools/:pool': { allow: SIGNED_IN },
  'PATCH /api/v1/gpu-pools/:pool': { allow: ADMIN, prepare: async () => ({ body: { size: 8 } }) },
  'DELETE /api/v1/gpu-pools/:pool': {
    allow: ADMIN,
    prepare: async (_p, w) => {
      const name = `doomed-${w.n()}`;
      await w.t.call('POST', '/api/v1/gpu-pools', { token: w.t.adminToken, body: { name, gpuType: 't4', size: 1 } });
      return { path: `/api/v1/gpu-pools/${name}` };
    },
  },
  'GET /api/v1/gpu-pools/:pool/grants': { allow: SIGNED_IN },
  'PUT /api/v1/gpu-pools/:pool/grants/:team': { allow: ADMIN, prepare: async () => ({ body: { limit: 2 } }) },
  'DELETE /api/v1/gpu-pools/:pool/grants/:team': {
    allow: ADMIN,
    prepare: async (_p, w) => {
      await w.t.call('PUT', '/api/v1/gpu-pools/pool1/grants/ml', { token: w.t.adminToken, body: { limit: 1 } });
      return {};
    },
  },
  'GET /api/v1/audit': { allow: ADMIN },

  'GET /api/v1/teams/:team/volumes': { allow: MEMBERS },
  'POST /api/v1/teams/:team/volumes': { allow: WS_OPERATORS, prepare: async (_p, w) => ({ body: { name: `vol-${w.n()}`, size: '1Gi' } }) },
  'GET /api/v1/teams/:team/volumes/:volume': { allow: MEMBERS },
  'PATCH /api/v1/teams/:team/volumes/:volume': { allow: WS_OPERATORS, prepare: async () => ({ body: { readOnlyFor: 'none' } }) },
  'DELETE /api/v1/teams/:team/volumes/:volume': {
    allow: ['owner', 'admin'],
    prepare: async (_p, w) => {
      const name = `doomed-${w.n()}`;
      assert.equal((await w.t.call('POST', '/api/v1/teams/ml/volumes', { token: w.t.adminToken, body: { name, size: '1Gi' } })).status, 201);
      return { path: `/api/v1/teams/ml/volumes/${name}` };
    },
  },
  // these servers run without a runtime, so an admin's request gets 409 no_runtime
  'GET /api/v1/images': { allow: ADMIN, alsoAllowed: [409] },
  'POST /api/v1/images': { allow: ADMIN, alsoAllowed: [409], prepare: async () => ({ body: { source: 'docker://registry.example/lab:1' } }) },
  'GET /api/v1/images/events': { allow: ADMIN, alsoAllowed: [409] },
  'GET /api/v1/images/:image': { allow: ADMIN, alsoAllowed: [409] },
  'DELETE /api/v1/images/:image': { allow: ADMIN, alsoAllowed: [409] },
};

const PARAMS: Record<string, string> = { team: 'ml', ws: 'wsx', user: 'ml-editor', pool: 'pool1', profile: 'small', id: 'none', cluster: 'east', volume: 'data', image: 'lab', provider: 'corp' };

async function setUp(t: TestServer): Promise<World> {
  const admin = t.adminToken;
  const tokens: Record<Persona, string | undefined> = { anonymous: undefined, admin, viewer: '', editor: '', owner: '', otherOwner: '' };
  for (const [persona, username] of Object.entries(USERS)) tokens[persona as Persona] = await t.user(username);
  await t.user('outsider');
  const mkTeam = async (name: string, owner: string, withMembers: boolean) => {
    assert.equal((await t.call('POST', '/api/v1/teams', { token: admin, body: { name, owner, quota: { workspaces: 1000, cpu: '1000', memory: '1000Gi', storage: '10Ti' } } })).status, 201);
    if (withMembers) {
      await t.call('PUT', `/api/v1/teams/${name}/members/ml-editor`, { token: admin, body: { role: 'editor' } });
      await t.call('PUT', `/api/v1/teams/${name}/members/ml-viewer`, { token: admin, body: { role: 'viewer' } });
    }
  };
  await mkTeam('ml', 'ml-owner', true);
  await mkTeam('cv', 'cv-owner', false);
  let counter = 0;
  const n = () => ++counter;
  const freshWorkspace = async (team = 'ml') => {
    const name = `ws-${n()}`;
    const r = await t.call('POST', `/api/v1/teams/${team}/workspaces`, { token: tokens.editor, body: { name, profile: 'small', start: false } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return name;
  };
  await t.call('POST', `/api/v1/teams/ml/workspaces`, { token: tokens.editor, body: { name: 'wsx', profile: 'small', start: false } });
  await t.call('POST', '/api/v1/gpu-pools', { token: admin, body: { name: 'pool1', gpuType: 'a100', size: 4 } });
  assert.equal((await t.call('POST', '/api/v1/teams/ml/volumes', { token: admin, body: { name: 'data', size: '1Gi' } })).status, 201);
  return {
    t,
    tokens,
    n,
    freshWorkspace,
    async freshTeam() {
      const name = `team-${n()}`;
      await mkTeam(name, 'ml-owner', true);
      return name;
    },
  };
}

async function auditCount(t: TestServer): Promise<number> {
  const r = await sql<{ n: number }>`select count(*) as n from audit`.execute(t.server.store.db);
  return Number(r.rows[0]!.n);
}

for (const kind of databaseKinds()) {
  describe(`authorization and audit walk (${kind})`, () => {
    test('every registered route has a permission entry, and each entry holds for every persona', async () => {
      // a Kubernetes cluster to render objects for; never contacted (its kubeconfig does not exist, the server runs no runtime)
      const t = await startServer({ database: kind, flags: { 'kubernetes.clusters': [{ name: 'east', kubeconfig: '/nonexistent' }] } });
      const w = await setUp(t);
      const routes = t.server.registered.filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS');
      const missing = routes.map((r) => `${r.method} ${r.url}`).filter((k) => !(k in TABLE));
      assert.deepEqual(missing, [], 'routes without an entry in the permission table');
      const stale = Object.keys(TABLE).filter((k) => !routes.some((r) => `${r.method} ${r.url}` === k));
      assert.deepEqual(stale, [], 'permission entries for routes that no longer exist');

      const failures: string[] = [];
      for (const r of routes) {
        const key = `${r.method} ${r.url}`;
        const entry = TABLE[key]!;
        const def = t.server.routes.find((d) => d.method === r.method && d.url === r.url)!;
        for (const persona of PERSONAS) {
          const c = entry.prepare ? await entry.prepare(persona, w) : {};
          const path = c.path ?? r.url.replace(/:([a-z]+)/g, (_m, p: string) => PARAMS[p]!);
          const token = persona === 'anonymous' ? undefined : (c.token ?? tokenOf(w, persona));
          const before = await auditCount(t);
          let status: number;
          let code: string | undefined;
          if (def.stream) {
            const ctrl = new AbortController();
            const res = await fetch(t.url + path, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: ctrl.signal });
            status = res.status;
            ctrl.abort();
          } else {
            const res = await t.call(r.method, path, { ...(token ? { token } : {}), ...(c.body !== undefined ? { body: c.body } : {}) });
            status = res.status;
            code = res.body?.error?.code;
            if (status >= 400 && !(isErrorCode(code) && ERROR_CODES[code].status === status)) failures.push(`${key} as ${persona}: HTTP ${status} with code ${code}, which the error catalogue does not give that status`);
          }
          const allowed = entry.allow.includes(persona);
          const ok = allowed ? (status >= 200 && status < 300) || (entry.alsoAllowed ?? []).includes(status) : [401, 403, 404].includes(status);
          if (!ok) failures.push(`${key} as ${persona}: HTTP ${status}, expected ${allowed ? 'success' : 'refusal'}`);
          if (persona === 'anonymous' && !allowed && status !== 401) failures.push(`${key} as anonymous: HTTP ${status}, expected 401`);
          if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)) {
            const rows = (await auditCount(t)) - before;
            if (rows !== 1) failures.push(`${key} as ${persona}: ${rows} audit rows, expected exactly 1`);
            else {
              const last = await t.server.store.audit.list({}, { limit: 1 });
              if (last.items[0]!.action !== def.action) failures.push(`${key} as ${persona}: audit action ${last.items[0]!.action}, expected ${def.action}`);
              const expectResult = status < 400 ? 'ok' : code;
              if (last.items[0]!.result !== expectResult || last.items[0]!.status !== status) failures.push(`${key} as ${persona}: audit row records ${last.items[0]!.result} (HTTP ${last.items[0]!.status}), expected ${expectResult} (HTTP ${status})`);
            }
          }
        }
      }
      assert.deepEqual(failures, []);
    });
  });
}
