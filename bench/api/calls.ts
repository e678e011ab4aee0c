import { UNIQUE, type RequestSpec } from '../lib/load.js';
import { pick, randomInt, seededRandom } from '../lib/random.js';
import type { Plan } from './plan.js';

/** One API call the benchmark times, with what a correct answer looks like. */
export interface CallDef {
  name: string;
  description: string;
  expectStatus: number;
  /** the JupyterHub call it is compared with, if any */
  anchor: string | null;
  /** whether the read targets (p99 bound, faster than the anchor) apply */
  read: boolean;
  next: (seq: number) => RequestSpec;
  check: (body: unknown) => string | undefined;
}

export const PAGE = 50;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/**
 * Atrium's calls, each request as a random driver (a user with a token):
 * their own workspaces (a full page of 50 and a cursor), one of their
 * workspaces, and a new workspace in their personal or shared team.
 */
export function atriumCalls(plan: Plan, seed: number): CallDef[] {
  const rnd = seededRandom(seed);
  const auth = plan.drivers.map((d) => `Bearer ${d.token}`);
  const driver = () => randomInt(rnd, plan.drivers.length);
  return [
    {
      name: 'list-my-workspaces',
      description: `GET /api/v1/workspaces?owner=me&limit=${PAGE}`,
      expectStatus: 200,
      anchor: 'users-page',
      read: true,
      next: () => ({
        method: 'GET',
        path: `/api/v1/workspaces?owner=me&limit=${PAGE}`,
        headers: { authorization: auth[driver()]!, accept: 'application/json' },
      }),
      check: (body) => {
        if (!isObject(body) || !Array.isArray(body.items)) return 'no items in the answer';
        const full = Math.min(PAGE, plan.sizes.perDriver);
        if (body.items.length !== full) return `expected ${full} workspaces, got ${body.items.length}`;
        if (plan.sizes.perDriver > PAGE && typeof body.nextCursor !== 'string') return 'expected a next-page cursor';
        return undefined;
      },
    },
    {
      name: 'get-workspace',
      description: 'GET /api/v1/teams/{team}/workspaces/{ws}',
      expectStatus: 200,
      anchor: 'get-user',
      read: true,
      next: () => {
        const d = driver();
        const ws = pick(rnd, plan.drivers[d]!.workspaces);
        return {
          method: 'GET',
          path: `/api/v1/teams/${ws.team}/workspaces/${ws.name}`,
          headers: { authorization: auth[d]!, accept: 'application/json' },
        };
      },
      check: (body) => (isObject(body) && typeof body.name === 'string' ? undefined : 'no workspace in the answer'),
    },
    {
      name: 'create-workspace',
      description: 'POST /api/v1/teams/{team}/workspaces (profile small, start false)',
      expectStatus: 201,
      anchor: null,
      read: false,
      next: () => {
        const d = driver();
        const who = plan.drivers[d]!;
        const team = rnd() < 0.5 ? who.personalTeam : who.sharedTeam;
        return {
          method: 'POST',
          path: `/api/v1/teams/${team}/workspaces`,
          headers: { authorization: auth[d]!, accept: 'application/json', 'content-type': 'application/json' },
          // the generator makes every name new in its team
          body: JSON.stringify({ name: `bench-${UNIQUE}`, profile: 'small', start: false }),
        };
      },
      check: (body) => (isObject(body) && typeof body.name === 'string' && body.name.startsWith('bench-') ? undefined : 'no new workspace in the answer'),
    },
  ];
}

/**
 * JupyterHub's nearest equivalents, with the service's admin token: one user
 * by name, and a page of 50 users at a random offset in JupyterHub 3's
 * paginated form.
 */
export function hubCalls(plan: Plan, token: string, seed: number): CallDef[] {
  const rnd = seededRandom(seed);
  const headers = { authorization: `token ${token}`, accept: 'application/json' };
  return [
    {
      name: 'users-page',
      description: `GET /hub/api/users?offset=N&limit=${PAGE} (Accept: application/jupyterhub-pagination+json)`,
      expectStatus: 200,
      anchor: null,
      read: true,
      next: () => ({
        method: 'GET',
        path: `/hub/api/users?offset=${randomInt(rnd, Math.max(1, plan.usernames.length - PAGE + 1))}&limit=${PAGE}`,
        headers: { ...headers, accept: 'application/jupyterhub-pagination+json' },
      }),
      check: (body) => {
        if (!isObject(body) || !Array.isArray(body.items) || !isObject(body._pagination)) return 'not a paginated answer';
        const full = Math.min(PAGE, plan.usernames.length);
        return body.items.length === full ? undefined : `expected ${full} users, got ${body.items.length}`;
      },
    },
    {
      name: 'get-user',
      description: 'GET /hub/api/users/{name}',
      expectStatus: 200,
      anchor: null,
      read: true,
      next: () => ({ method: 'GET', path: `/hub/api/users/${pick(rnd, plan.usernames)}`, headers }),
      check: (body) => (isObject(body) && typeof body.name === 'string' ? undefined : 'no user in the answer'),
    },
  ];
}
