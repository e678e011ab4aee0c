import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, Forbidden, InvalidInput, Unauthenticated } from '../domain/index.js';
import { errorBody } from '../http/index.js';
import { createAjv, describeErrors } from '../validation/index.js';
import type { RouteAction } from './actions.js';
import { requireAdmin } from './access.js';
import { type Authenticated, type Cookies, type Identity } from '../identity/index.js';
import { auditScope, type AuditScope, type Store } from '../store/index.js';
import { SerializedJson } from './lists.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type In<T> = T extends TSchema ? Static<T> : undefined;

export interface RouteContext<P, Q, B> {
  params: In<P>;
  query: In<Q>;
  body: In<B>;
  /** who is asking, or undefined for an anonymous request */
  auth: Authenticated | undefined;
  /** the signed-in person; throws Unauthenticated for anonymous requests */
  user: () => Authenticated;
  ip: string;
  request: FastifyRequest;
  reply: FastifyReply;
  /** what the audit row names as the target, when the path alone does not say it */
  auditTarget: (target: string) => void;
}

export interface RouteDef<P = unknown, Q = unknown, B = unknown, R = unknown> {
  method: Method;
  url: string;
  /** the action name used in audit rows and in the permission table, e.g. `workspace.create` */
  action: RouteAction;
  summary: string;
  tag: string;
  /** no sign-in needed (login, health, the API description) */
  public?: boolean;
  /** platform admins only: refused (403) before the handler runs */
  admin?: boolean;
  /** what the audit row names as the target, from the validated request, when the path alone does not say it */
  target?: (req: { params: In<P>; body: In<B> }) => string;
  params?: P;
  query?: Q;
  body?: B;
  response?: R;
  /** success status: 200 by default, 201 for creations, 204 for no content, 302 for a redirect (the handler returns a {@link Redirect}) */
  status?: 200 | 201 | 204 | 302;
  /** a Server-Sent Events stream rather than one JSON document */
  stream?: boolean;
  /** other media types the route answers with when asked, besides `response` as JSON (the handler returns a {@link TextBody}) */
  alternates?: Record<string, TSchema>;
  handler(ctx: RouteContext<P, Q, B>): Promise<R extends TSchema ? Static<R> | SerializedJson<Static<R>> | TextBody | Redirect : unknown>;
}

/** What a route without a query schema accepts: nothing. */
const NO_FIELDS = Type.Object({}, { additionalProperties: false });
/** What a mutating route without a body schema accepts: no body, or an empty object. */
const NO_BODY = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })]);

/** A response body in another media type than JSON, one of the route's `alternates`. */
export class TextBody {
  constructor(
    readonly contentType: string,
    readonly text: string,
    /** the status instead of the route's (a page that says why something was refused) */
    readonly status?: number,
  ) {}
}

/** A 302 to `location` (a sign-in's steps between Atrium and an identity provider), with the cookies to set on the way. */
export class Redirect {
  constructor(
    readonly location: string,
    readonly cookies: string[] = [],
  ) {}
}

/** Declares a route; the one schema per part validates it, types the handler and documents it. */
export function route<P extends TSchema | undefined, Q extends TSchema | undefined, B extends TSchema | undefined, R extends TSchema | undefined>(
  def: RouteDef<P, Q, B, R>,
): RouteDef {
  return def;
}

interface RequestState {
  audit?: AuditScope;
  auth: Authenticated | undefined;
  authError: DomainError | undefined;
  target: string | undefined;
  errorCode: string | undefined;
  errorMessage: string | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    atrium: RequestState;
  }
  interface FastifyContextConfig {
    def?: RouteDef;
  }
}

/**
 * Cookie-authenticated changes must come from Atrium's own pages: browsers
 * send Sec-Fetch-Site (or at least Origin) on every unsafe request, and a
 * cross-site one is refused. Bearer-token clients are not affected.
 */
function checkCsrf(request: FastifyRequest, https: boolean, requireHeader: boolean): void {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string') {
    if (site === 'same-origin' || site === 'none') return;
    throw new Forbidden(`cross-site request refused (Sec-Fetch-Site: ${site})`, 'csrf');
  }
  const origin = request.headers.origin;
  if (typeof origin !== 'string') {
    if (requireHeader) throw new Forbidden('cookie-authenticated changes need an Origin header', 'csrf');
    return;
  }
  const expected = `${https ? 'https' : 'http'}://${request.headers.host ?? ''}`;
  if (origin !== expected) throw new Forbidden(`cross-origin request refused (Origin: ${origin})`, 'csrf');
}

function errorReply(reply: FastifyReply, request: FastifyRequest, err: DomainError) {
  request.atrium.errorCode = err.code;
  request.atrium.errorMessage = err.message;
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  return reply.code(err.status).header('cache-control', 'no-store').type('application/json; charset=utf-8').send(errorBody(err));
}

export interface RouterDeps {
  store: Store;
  identity: Identity;
  cookies: Cookies;
  https: boolean;
  log: { error(obj: unknown, msg?: string): void };
  /** resolves once the effects of access changes (who may enter workspaces over SSH) have reached running workspaces */
  accessSettled?: () => Promise<void>;
}

/**
 * Registers routes with the hooks every route shares: authentication (once,
 * before the body is read, so even refused requests have an actor), CSRF
 * checks, one audit row per mutating request, and the single error mapping.
 */
export function registerRoutes(app: FastifyInstance, routes: RouteDef[], deps: RouterDeps): void {
  /** access changes (people, keys, memberships, sharing) so far: a request that made one waits for it to take effect */
  let accessChanges = 0;
  deps.store.onAccessChange(() => accessChanges++);
  const strictAjv = createAjv({ coerce: false });
  const coercingAjv = createAjv({ coerce: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema));

  app.decorateRequest('atrium', null as unknown as RequestState);

  app.addHook('onRequest', async (request) => {
    const state: RequestState = { auth: undefined, authError: undefined, target: undefined, errorCode: undefined, errorMessage: undefined };
    request.atrium = state;
    const def = request.routeOptions.config?.def;
    try {
      state.auth = await deps.identity.authenticate({
        remoteAddress: request.socket.remoteAddress ?? '',
        authorization: request.headers.authorization,
        sessionCookie: deps.cookies.read(request.raw, 'session'),
        headers: request.headers,
      });
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      if (def && !def.public) throw err;
      state.authError = err;
    }
    if (MUTATING.has(request.method)) {
      // Session changes must prove they come from our pages; a public route
      // (login) is refused only when the browser says it is cross-site.
      if (state.auth?.via === 'session') checkCsrf(request, deps.https, true);
      else if (def && !request.headers.authorization) checkCsrf(request, deps.https, false);
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const def = request.routeOptions.config?.def;
    // Unmatched mutating requests are audited too: a refused attempt is worth a row even when it names no endpoint.
    if (!MUTATING.has(request.method) || !request.atrium) return payload;
    const state = request.atrium;
    const status = reply.statusCode;
    const path = request.url.split('?')[0]!.replace(/^\/api\/v1\//, '');
    const written = state.audit?.writtenId;
    if (written !== undefined) {
      // written with the change; only a failure after it needs saying
      if (status >= 400) await deps.store.audit.amend(written, { result: state.errorCode ?? `http_${status}`, status, details: { message: state.errorMessage ?? '' } });
      return payload;
    }
    await deps.store.audit.record({
      actorId: state.auth?.user.id ?? null,
      actor: state.auth?.user.username ?? 'anonymous',
      action: def?.action ?? 'request.unmatched',
      target: state.target ?? path,
      result: status < 400 ? 'ok' : (state.errorCode ?? `http_${status}`),
      status,
      ip: request.ip,
      details: status < 400 ? {} : { message: state.errorMessage ?? '' },
    });
    return payload;
  });

  app.setErrorHandler((err: Error & { validation?: unknown; validationContext?: string; code?: string; statusCode?: number }, request, reply) => {
    if (err instanceof DomainError) return errorReply(reply, request, err);
    if (err.validation) {
      const where = err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'request');
      return errorReply(reply, request, new InvalidInput(describeErrors(err.validation as never, where)));
    }
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return errorReply(reply, request, new DomainError('payload_too_large', `request body too large; the limit is ${app.initialConfig.bodyLimit} bytes`));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return errorReply(reply, request, new DomainError('unsupported_media_type', 'send the body as application/json'));
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return errorReply(reply, request, new InvalidInput('body: empty, but Content-Type says JSON'));
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return errorReply(reply, request, new InvalidInput('body: not valid JSON'));
    }
    if (err instanceof SyntaxError || (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)) {
      return errorReply(reply, request, new InvalidInput(`request: ${err.message}`));
    }
    deps.log.error({ err, url: request.url, method: request.method }, 'request failed');
    return errorReply(reply, request, new DomainError('internal', 'internal error; the server log has the details'));
  });

  app.setNotFoundHandler((request, reply) => {
    request.atrium ??= { auth: undefined, authError: undefined, target: undefined, errorCode: undefined, errorMessage: undefined };
    return errorReply(reply, request, new DomainError('not_found', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`));
  });

  for (const def of routes) {
    const status = def.status ?? 200;
    app.route({
      method: def.method,
      url: def.url,
      config: { def },
      schema: {
        ...(def.params ? { params: def.params as TSchema } : {}),
        // a route that takes no query or body refuses one rather than ignoring it: a client's mistake is said, not hidden
        querystring: (def.query ?? NO_FIELDS) as TSchema,
        ...(def.body ? { body: def.body as TSchema } : MUTATING.has(def.method) ? { body: NO_BODY } : {}),
        ...(def.response && !def.stream ? { response: { [status]: def.response as TSchema } } : {}),
      },
      handler: async (request, reply) => {
        const state = request.atrium;
        const ctx: RouteContext<unknown, unknown, unknown> = {
          params: request.params as never,
          query: request.query as never,
          body: request.body as never,
          auth: state.auth,
          user: () => {
            if (!state.auth) throw state.authError ?? new Unauthenticated();
            return state.auth;
          },
          ip: request.ip,
          request,
          reply,
          auditTarget: (target) => {
            state.target = target;
          },
        };
        if (!def.public) ctx.user();
        if (def.target) state.target = def.target(ctx);
        if (def.admin) requireAdmin(ctx.user());
        let result: unknown;
        if (MUTATING.has(def.method)) {
          const scope: AuditScope = {
            writtenId: undefined,
            row: () => ({
              actorId: state.auth?.user.id ?? null,
              actor: state.auth?.user.username ?? 'anonymous',
              action: def.action,
              target: state.target ?? request.url.split('?')[0]!.replace(/^\/api\/v1\//, ''),
              status,
              ip: request.ip,
            }),
          };
          state.audit = scope;
          const changesBefore = accessChanges;
          result = await auditScope.run(scope, () => def.handler(ctx));
          // a key removed or a membership ended by this request holds for the next SSH connection once it answers
          if (accessChanges !== changesBefore) await deps.accessSettled?.();
        } else {
          result = await def.handler(ctx);
        }
        if (def.stream) return reply;
        if (status === 204) return reply.code(204).send();
        // written out already, by the serializer compiled from this route's response schema
        if (result instanceof SerializedJson) return reply.code(status).type('application/json; charset=utf-8').send(result.json);
        if (result instanceof TextBody) return reply.code(result.status ?? status).type(result.contentType).send(result.text);
        if (result instanceof Redirect) return reply.code(302).header('location', result.location).header('set-cookie', result.cookies).header('cache-control', 'no-store').send();
        return reply.code(status).send(result);
      },
    });
  }
}
