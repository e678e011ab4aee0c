import { STATUS_CODES } from 'node:http';
import type { TSchema } from '@sinclair/typebox';
import { ERROR_CODES } from '../domain/index.js';
import type { RouteDef } from './router.js';
import { ErrorBody } from './schemas.js';

/** Each error status with the codes it carries, from the one catalogue. */
const ERROR_STATUSES: Record<string, string> = (() => {
  const byStatus = new Map<number, string[]>();
  for (const [code, { status }] of Object.entries(ERROR_CODES)) byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  return Object.fromEntries([...byStatus].map(([status, codes]) => [String(status), `${STATUS_CODES[status] ?? 'error'}: ${codes.join(', ')}`]));
})();

/** Drops TypeBox's symbol-keyed metadata so the schema is plain JSON Schema. */
const plain = (schema: TSchema): unknown => JSON.parse(JSON.stringify(schema));

function parameters(def: RouteDef) {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', def.params], ['query', def.query]] as const) {
    const props = (schema as { properties?: Record<string, TSchema>; required?: string[] } | undefined)?.properties ?? {};
    const required = new Set((schema as { required?: string[] } | undefined)?.required ?? []);
    for (const [name, prop] of Object.entries(props)) {
      out.push({ name, in: where, required: where === 'path' || required.has(name), schema: plain(prop), ...(prop.description ? { description: prop.description } : {}) });
    }
  }
  return out;
}

/** The OpenAPI 3.1 document, built from the same route definitions and schemas that validate requests. */
export function openApiDocument(routes: RouteDef[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of routes) {
    const path = def.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const status = String(def.status ?? 200);
    const success = def.stream
      ? { description: 'event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }
      : status === '204'
        ? { description: 'done' }
        : status === '302'
          ? { description: 'a redirect: Location says where the browser goes next' }
          : {
            description: 'ok',
            content: {
              'application/json': { schema: plain(def.response as TSchema) },
              ...Object.fromEntries(Object.entries(def.alternates ?? {}).map(([type, schema]) => [type, { schema: plain(schema) }])),
            },
          };
    const errors = Object.fromEntries(
      Object.entries(ERROR_STATUSES).map(([code, description]) => [code, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
    );
    (paths[path] ??= {})[def.method.toLowerCase()] = {
      operationId: `${def.method.toLowerCase()} ${path}`,
      summary: def.summary,
      tags: [def.tag],
      'x-atrium-action': def.action,
      ...(def.admin ? { 'x-atrium-admin-only': true } : {}),
      ...(def.public ? { security: [] } : {}),
      parameters: parameters(def),
      ...(def.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(def.body as TSchema) } } } } : {}),
      responses: { [status]: success, ...errors },
    };
  }
  const { $id: _id, ...errorSchema } = plain(ErrorBody) as Record<string, unknown>;
  return {
    openapi: '3.1.0',
    info: { title: 'Atrium API', version, description: 'Multi-tenant development environments: teams, quotas, profiles, workspaces.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { session: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token (atr_…), from `atrium login` or POST /api/v1/me/tokens' },
        session: { type: 'apiKey', in: 'cookie', name: '__Host-atrium_session', description: 'set by POST /api/v1/auth/login; named atrium_session where the browser does not treat the origin as secure (plain HTTP to a name other than localhost)' },
      },
      schemas: { Error: errorSchema },
    },
    paths,
  };
}
