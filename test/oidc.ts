import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration } from 'oidc-provider';

/** A person at the test identity provider: `sub` and the claims it gives. */
export interface TestAccount {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  preferred_username?: string;
  groups?: string[];
}

export interface TestProvider {
  issuer: string;
  provider: Provider;
  /** change what a person's claims say from now on (their groups, say) */
  accounts: Map<string, TestAccount>;
  close(): Promise<void>;
}

/**
 * A real OpenID Connect provider (the `oidc-provider` package, certified),
 * in this process on a loopback port, with one confidential client and the
 * given accounts. Its development sign-in pages take any account id, so a
 * test signs in as whom it names; consent is asked and given like a person would.
 */
export async function startOidcProvider(opts: { clientId: string; clientSecret: string; redirectUris: string[]; accounts: TestAccount[]; postLogoutRedirectUris?: string[] }): Promise<TestProvider & { tamper: { idTokens: boolean } }> {
  const accounts = new Map(opts.accounts.map((a) => [a.sub, a]));
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const configuration: Configuration = {
    clients: [{ client_id: opts.clientId, client_secret: opts.clientSecret, redirect_uris: opts.redirectUris, post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [], grant_types: ['authorization_code'], response_types: ['code'] }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    findAccount: (_ctx, id) => {
      const a = accounts.get(id);
      return a ? { accountId: id, claims: () => ({ ...a }) } : undefined;
    },
    // ID tokens carry the claims, so they are checked with the token's signature
    conformIdTokenClaims: false,
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  };
  const provider = new Provider(issuer, configuration);
  // the provider serves plain HTTP on loopback for the test
  provider.proxy = false;
  const handle = provider.callback();
  const tamper = { idTokens: false };
  server.on('request', (req, res) => {
    if (tamper.idTokens && req.method === 'POST' && req.url?.startsWith('/token')) {
      // a man in the middle: the ID token's claims rewritten to another person, its signature left as it was
      const end = res.end.bind(res) as (body: string) => void;
      (res as unknown as { end: (body?: string | Buffer) => void }).end = (body?: string | Buffer) => {
        const answer = JSON.parse(String(body)) as { id_token?: string };
        if (answer.id_token) {
          const [head, claims, signature] = answer.id_token.split('.');
          const forged = { ...JSON.parse(Buffer.from(claims!, 'base64url').toString()), sub: 'u-someone-else', email: 'admin@example.com' };
          answer.id_token = [head, Buffer.from(JSON.stringify(forged)).toString('base64url'), signature].join('.');
        }
        const text = JSON.stringify(answer);
        res.setHeader('content-length', Buffer.byteLength(text));
        end(text);
      };
    }
    void handle(req, res);
  });
  return {
    issuer,
    provider,
    accounts,
    tamper,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

interface Hop {
  status: number;
  location: string | undefined;
  body: string;
  url: string;
}

/**
 * A browser's part in a sign-in, done with fetch: a cookie jar per origin,
 * redirects followed by hand, the provider's sign-in and consent forms
 * submitted as `account`. Returns every hop, the last being where it ended.
 */
export class TestBrowser {
  readonly jar = new Map<string, Map<string, string>>();

  cookieHeader(url: string): string {
    return [...(this.jar.get(new URL(url).host) ?? new Map<string, string>()).entries()].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(url: string, res: Response): void {
    const host = new URL(url).host;
    const jar = this.jar.get(host) ?? new Map<string, string>();
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.jar.set(host, jar);
  }

  async request(url: string, init: { method?: string; body?: string } = {}): Promise<Hop> {
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { cookie: this.cookieHeader(url), accept: 'text/html', ...(init.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    this.keep(url, res);
    const location = res.headers.get('location') ?? undefined;
    return { status: res.status, location: location && new URL(location, url).href, body: await res.text(), url };
  }

  /** Follows redirects from `url`, answering the provider's forms as `account`, until a page that is not a redirect or a form of the provider. */
  async signIn(url: string, account: string, stop: (hop: Hop) => boolean = () => false): Promise<Hop[]> {
    const hops: Hop[] = [];
    let hop = await this.request(url);
    for (let i = 0; i < 30; i++) {
      hops.push(hop);
      if (stop(hop)) return hops;
      if (hop.status >= 300 && hop.status < 400 && hop.location) {
        hop = await this.request(hop.location);
        continue;
      }
      const form = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(hop.body) ?? /<form[^>]*method="post"[^>]*action="([^"]+)"/i.exec(hop.body);
      const prompt = /name="prompt" value="(login|consent)"/.exec(hop.body)?.[1];
      if (hop.status === 200 && form && prompt) {
        const action = new URL(form[1]!.replace(/&amp;/g, '&'), hop.url).href;
        const body = prompt === 'login' ? new URLSearchParams({ prompt, login: account, password: 'any' }) : new URLSearchParams({ prompt });
        hop = await this.request(action, { method: 'POST', body: body.toString() });
        continue;
      }
      return hops;
    }
    throw new Error('too many redirects');
  }
}
