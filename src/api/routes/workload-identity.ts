import { Type } from '@sinclair/typebox';
import { NotFound } from '../../domain/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import { Jwk, OpenIdConfiguration, WorkloadIdentityView } from '../schemas.js';
import { iso } from '../views.js';

/**
 * Atrium as an OpenID issuer for workloads: the discovery document and key
 * set any verifier reads (public, as OpenID requires), and for admins the
 * keys' states and a rotation on demand.
 */
export function workloadIdentityRoutes(deps: ApiDeps): RouteDef[] {
  const issuer = () => {
    if (!deps.workload) throw new NotFound('workload identity (workloadIdentity.enabled is false)');
    return deps.workload.identity;
  };
  const view = async () => {
    const w = issuer();
    return {
      issuer: w.issuer,
      audiences: w.audiences,
      tokenLifetimeSeconds: Math.round(w.tokenLifetimeMs / 1000),
      keyRotationSeconds: Math.round(w.keyRotationMs / 1000),
      tokensFromAtrium: deps.workload!.tokensFromAtrium,
      keys: (await w.keys()).map((k) => ({
        kid: k.kid,
        algorithm: k.algorithm,
        state: k.state,
        createdAt: iso(k.createdAt),
        activatedAt: k.activatedAt === null ? null : iso(k.activatedAt),
        retiredAt: k.retiredAt === null ? null : iso(k.retiredAt),
        expiresAt: k.expiresAt === null ? null : iso(k.expiresAt),
      })),
    };
  };
  return [
    route({
      method: 'GET',
      url: '/.well-known/openid-configuration',
      action: 'identity.discovery',
      summary: "Workload identity: the issuer's OpenID discovery document, which services trusting workspace tokens read",
      tag: 'workload identity',
      public: true,
      response: OpenIdConfiguration,
      async handler({ reply }) {
        const doc = issuer().discovery();
        reply.header('cache-control', 'public, max-age=300');
        return doc;
      },
    }),
    route({
      method: 'GET',
      url: '/.well-known/jwks.json',
      action: 'identity.jwks',
      summary: 'Workload identity: the public keys workspace tokens are signed with (the next key, published ahead of its turn, and retired keys until their last token expires)',
      tag: 'workload identity',
      public: true,
      response: Type.Object({ keys: Type.Array(Jwk) }),
      async handler({ reply }) {
        const set = await issuer().jwks();
        reply.header('cache-control', 'public, max-age=300');
        return set as { keys: Array<{ kty: string; kid: string; alg: string; use: string; n: string; e: string }> };
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/workload-identity',
      action: 'identity.read',
      admin: true,
      summary: 'Workload identity: issuer, audiences, lifetimes, and the signing keys with their states (never their private halves)',
      tag: 'workload identity',
      response: WorkloadIdentityView,
      handler: view,
    }),
    route({
      method: 'POST',
      url: '/api/v1/workload-identity/rotate',
      action: 'identity.rotate',
      admin: true,
      summary: 'Rotates the signing key now: the next key signs, the current one stays published until the last token it signed expires',
      tag: 'workload identity',
      response: WorkloadIdentityView,
      async handler() {
        await issuer().rotateNow();
        return view();
      },
    }),
  ];
}
