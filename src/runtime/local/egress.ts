import { createHash } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { egressRuleset } from './egress-rules.js';
import { run } from './exec.js';

/**
 * Public egress for local sandboxes (design §6, §7): a workspace whose
 * profile says `egress: public` runs in a network namespace of its own with
 * one veth to the host, an address from `subnet` and the platform's
 * resolver as its only gateway. Its traffic leaves by the uplink,
 * masqueraded, through the nftables rules of `egress-rules.ts`, on a routing
 * table of its own (so an uplink other than the host's default route can be
 * named). Everything lives on the host; the sandbox has no capability to
 * change any of it.
 */

export interface EgressConfig {
  /** addresses for workspace links (IPv4, /8 to /24); the first is the platform's resolver */
  subnet: string;
  /** the interface egress leaves by; the host's default route's when unset */
  uplink?: string | undefined;
  /** the next hop on it; the default route's when unset (none: the uplink is point-to-point) */
  gateway?: string | undefined;
  /** resolvers the platform's DNS relay asks; the host's /etc/resolv.conf's when unset */
  dns?: string[] | undefined;
}

/** What one workspace's link lets through: public addresses or not, and the IPv4 ranges it may reach besides. */
export interface LinkRule {
  public: boolean;
  allow: string[];
}

export interface Egress {
  /** true when workspaces can be given public egress here, else why not */
  readonly available: true | string;
  /** the address the sandboxes' resolv.conf names */
  readonly resolver: string;
  /**
   * Gives the workspace its network namespace and link (replacing what a
   * crash left of an earlier one) and opens the filter for it; returns the
   * namespace's path for runc, and the slot (its address in the subnet) to
   * keep for it: the one given, else a free one.
   */
  attach(id: string, rule: LinkRule, slot?: number): Promise<{ netns: string; slot: number }>;
  /** Removes the workspace's link and namespace; nothing when it has none. */
  detach(id: string): Promise<void>;
  /** Whether the workspace's link and namespace exist now. */
  attached(id: string): boolean;
  /**
   * After a restart: keeps the links of `keep` (workspace id → slot), removes
   * every other link and namespace of Atrium's, and writes the rules again.
   */
  adopt(keep: Map<string, LinkRule & { slot: number }>): Promise<void>;
  /** Stops the DNS relay; when no workspace has a link, removes the rules, routes and resolver address too. */
  close(): Promise<void>;
}

const NETNS_DIR = '/run/netns';
const hash = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Names of one Atrium's egress objects on the host. Several Atrium servers
 * can share a machine (each with its own data directory and subnet): each
 * keeps to names tagged from its directory, and never touches another's.
 */
export function egressNames(dir: string) {
  const tag = hash(dir).slice(0, 4);
  return {
    /** the nftables table */
    table: `atrium_${tag}`,
    /** `a`, the tag and 10 characters of the workspace id's hash: interface names have at most 15 */
    vethPrefix: `a${tag}`,
    veth: (id: string) => `a${tag}${hash(id).slice(0, 10)}`,
    netnsPrefix: `atrium-${tag}-`,
    netns: (id: string) => `atrium-${tag}-${id}`,
    /** the routing table workspace traffic takes */
    routeTable: 10_000 + parseInt(tag, 16),
    /** its rule's priority: before the main table's (32766), whose default route it must not take */
    rulePriority: 5_000 + (parseInt(tag, 16) % 20_000),
  };
}

function parseCidr(cidr: string): { base: number; bits: number } {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = Number(m?.[5]);
  if (!m || octets.some((o) => o > 255) || bits < 8 || bits > 24) throw new Error(`runtime.egress.subnet: ${cidr} is not an IPv4 CIDR from /8 to /24`);
  const base = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (base & mask) >>> 0, bits };
}
const ipOf = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** The host's default route: its interface and next hop. */
async function defaultRoute(): Promise<{ dev: string; gateway?: string } | undefined> {
  const { stdout } = await run('ip', ['-j', '-4', 'route', 'show', 'default']);
  const routes = JSON.parse(stdout || '[]') as Array<{ dev?: string; gateway?: string }>;
  const r = routes.find((x) => x.dev);
  return r?.dev ? { dev: r.dev, ...(r.gateway ? { gateway: r.gateway } : {}) } : undefined;
}

async function hostAddresses(except: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', '-4', 'addr', 'show']);
  const links = JSON.parse(stdout || '[]') as Array<{ ifname: string; addr_info?: Array<{ local?: string }> }>;
  return [...new Set(links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local).filter((a): a is string => Boolean(a) && a !== except)))];
}

async function commandExists(name: string): Promise<boolean> {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) if (existsSync(join(dir, name))) return true;
  return false;
}

const ipBatch = (lines: string[], netns?: string) => run('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], { input: `${lines.join('\n')}\n` });
const forwarding = (dev: string) => `/proc/sys/net/ipv4/conf/${dev}/forwarding`;

/**
 * Sets up the host side of public egress (the resolver's address, the
 * routing table, forwarding on the uplink, the rules, the DNS relay), or
 * says why it cannot be offered here.
 */
export async function createEgress(opts: { dir: string; config: EgressConfig; log: { warn(obj: unknown, msg?: string): void } }): Promise<Egress> {
  const { base, bits } = parseCidr(opts.config.subnet);
  const names = egressNames(opts.dir);
  const TABLE = names.routeTable;
  const PRIORITY = names.rulePriority;
  const netnsOf = names.netns;
  const vethOf = names.veth;
  const size = 2 ** (32 - bits);
  const resolver = ipOf(base + 1);
  const subnet = `${ipOf(base)}/${bits}`;
  const links = new Map<string, LinkRule & { slot: number }>();
  let relay: { close(): Promise<void> } | undefined;
  let guardUplink = false;
  let uplink = opts.config.uplink ?? '';

  const available = await (async (): Promise<true | string> => {
    if (process.getuid?.() !== 0) return 'public egress needs the control plane to run as root';
    if (!(await commandExists('nft'))) return 'public egress needs nftables (the nft command; Debian package nftables)';
    if (!(await commandExists('ip'))) return 'public egress needs iproute2 (the ip command)';
    const route = await defaultRoute();
    uplink = opts.config.uplink ?? route?.dev ?? '';
    if (!uplink) return 'public egress needs an uplink: the host has no default route and runtime.egress.uplink is unset';
    if (!existsSync(`/sys/class/net/${uplink}`)) return `runtime.egress.uplink: no interface ${uplink} on this host`;
    return true;
  })();

  async function writeRules(): Promise<void> {
    const rules = egressRuleset({
      table: names.table, vethPrefix: names.vethPrefix, subnet, resolver, uplink, hostAddresses: await hostAddresses(resolver), guardUplink,
      links: [...links].map(([id, l]) => ({ veth: vethOf(id), public: l.public, allow: l.allow })),
    });
    await run('nft', ['-f', '-'], { input: rules });
  }

  async function setUp(): Promise<void> {
    const route = await defaultRoute();
    const gateway = opts.config.gateway ?? (opts.config.uplink === undefined || opts.config.uplink === route?.dev ? route?.gateway : undefined);
    // the relay's address is the host's own, on loopback: the host answers for it on every workspace link
    await run('ip', ['addr', 'replace', `${resolver}/32`, 'dev', 'lo']);
    for (const p of [PRIORITY - 1, PRIORITY]) await run('ip', ['rule', 'del', 'priority', String(p)]).catch(() => undefined);
    // what goes to a workspace (the relay's answers, which come from inside the subnet) takes the main table's link routes
    await ipBatch([`rule add to ${subnet} lookup main priority ${PRIORITY - 1}`, `rule add from ${subnet} lookup ${TABLE} priority ${PRIORITY}`, `route replace default ${gateway ? `via ${gateway} ` : ''}dev ${uplink} table ${TABLE}`]);
    // forwarding is turned on for the uplink only (replies come in there) and each workspace link; when Atrium turned it on,
    // the rules forward nothing else that comes in by the uplink, so the host routes for nobody else
    const state = join(opts.dir, 'egress-uplink.json');
    const saved = JSON.parse(await readFile(state, 'utf8').catch(() => '{}')) as { uplink?: string; before?: string };
    if (saved.uplink !== uplink) {
      const before = (await readFile(forwarding(uplink), 'utf8')).trim();
      await writeFile(state, JSON.stringify({ uplink, before }), { mode: 0o600 });
      saved.before = before;
    }
    guardUplink = saved.before !== '1';
    await writeFile(forwarding(uplink), '1');
    await writeRules();
    relay = await startDnsRelay(resolver, opts.config.dns ?? (await hostResolvers()), opts.log);
  }

  // made at the first workspace that needs it: a machine whose profiles never ask for egress keeps its network as it is
  let setUpDone: Promise<void> | undefined;
  const ensureSetUp = () => (setUpDone ??= setUp().catch((err: unknown) => {
    setUpDone = undefined;
    throw err;
  }));

  let closed = false;
  /** Removes the rules, routes and the resolver's address: for when no workspace has a link and the server is closing. */
  async function teardown(): Promise<void> {
    if (available !== true) return;
    await run('nft', ['delete', 'table', 'inet', names.table]).catch(() => undefined);
    for (const p of [PRIORITY - 1, PRIORITY]) await run('ip', ['rule', 'del', 'priority', String(p)]).catch(() => undefined);
    await run('ip', ['route', 'flush', 'table', String(TABLE)]).catch(() => undefined);
    await run('ip', ['addr', 'del', `${resolver}/32`, 'dev', 'lo']).catch(() => undefined);
    // forwarding on the uplink back to what it was before Atrium turned it on
    const state = join(opts.dir, 'egress-uplink.json');
    const saved = JSON.parse(await readFile(state, 'utf8').catch(() => '{}')) as { uplink?: string; before?: string };
    if (saved.uplink === uplink && saved.before !== undefined && existsSync(forwarding(uplink))) await writeFile(forwarding(uplink), saved.before);
    await rm(state, { force: true });
  }

  async function removeLink(id: string): Promise<void> {
    const veth = vethOf(id);
    if (existsSync(`/sys/class/net/${veth}`)) await run('ip', ['link', 'del', veth]).catch(() => undefined);
    if (existsSync(join(NETNS_DIR, netnsOf(id)))) await run('ip', ['netns', 'del', netnsOf(id)]);
  }

  return {
    available,
    resolver,
    async attach(id, rule, wanted) {
      if (available !== true) throw new Error(available);
      await ensureSetUp();
      // taken before anything is awaited, so two starts at once never share an address
      const taken = new Set([...links].filter(([other]) => other !== id).map(([, l]) => l.slot));
      let slot = wanted;
      if (slot === undefined || taken.has(slot)) {
        slot = 0;
        while (taken.has(slot)) slot++;
      }
      if (slot >= size - 3) throw new Error(`runtime.egress.subnet ${subnet} has no address left for another workspace`);
      links.set(id, { slot, public: rule.public, allow: [...rule.allow] });
      // the slot stays taken while the link is made: on failure below it is given back
      const ns = netnsOf(id);
      const veth = vethOf(id);
      const address = ipOf(base + 2 + slot);
      await removeLink(id);
      await run('ip', ['netns', 'add', ns]);
      try {
        await ipBatch([`link add ${veth} type veth peer name eth0 netns ${ns}`, `link set ${veth} up`, `route replace ${address}/32 dev ${veth}`]);
        await writeFile(forwarding(veth), '1');
        await ipBatch(['link set lo up', 'link set eth0 up', `addr add ${address}/32 dev eth0`, `route add ${resolver} dev eth0`, `route add default via ${resolver} dev eth0`], ns);
        await writeRules();
      } catch (err) {
        links.delete(id);
        await removeLink(id).catch(() => undefined);
        throw err;
      }
      return { netns: join(NETNS_DIR, ns), slot };
    },
    async detach(id) {
      const had = links.delete(id);
      await removeLink(id);
      if (!had || available !== true) return;
      // the last link gone after the server closed (its sandboxes removed): nothing of egress stays on the host
      if (closed && links.size === 0) await teardown();
      else if (setUpDone) await writeRules();
    },
    attached(id) {
      return links.has(id) && existsSync(`/sys/class/net/${vethOf(id)}`) && existsSync(join(NETNS_DIR, netnsOf(id)));
    },
    async adopt(keep) {
      if (available !== true) return;
      if (keep.size > 0) await ensureSetUp();
      for (const [id, l] of keep) links.set(id, l);
      const wanted = new Set([...keep.keys()].map(vethOf));
      const { stdout } = await run('ip', ['-j', 'link', 'show']);
      for (const l of JSON.parse(stdout || '[]') as Array<{ ifname: string }>) {
        if (l.ifname.startsWith(names.vethPrefix) && !wanted.has(l.ifname)) await run('ip', ['link', 'del', l.ifname]).catch(() => undefined);
      }
      const namespaces = new Set([...keep.keys()].map(netnsOf));
      for (const ns of await readdir(NETNS_DIR).catch(() => [] as string[])) {
        if (ns.startsWith(names.netnsPrefix) && !namespaces.has(ns)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      }
      // no workspace with a link: whatever an earlier run left of the rules goes too
      if (keep.size > 0) await writeRules();
      else await teardown();
    },
    async close() {
      closed = true;
      await relay?.close();
      if (setUpDone && links.size === 0) await teardown();
    },
  };
}

/** DNS queries (UDP) and connections (TCP) the relay carries at once, per workspace and in all. */
const PER_WORKSPACE = 64;
const IN_ALL = 1024;

/** The host's resolvers, from /etc/resolv.conf. */
async function hostResolvers(): Promise<string[]> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!);
}

/**
 * The platform's resolver for sandboxes: a relay on `address`, port 53 (UDP
 * and TCP), to the host's resolvers, which a sandbox cannot reach itself
 * when they sit at private addresses.
 */
async function startDnsRelay(address: string, upstreams: string[], log: { warn(obj: unknown, msg?: string): void }): Promise<{ close(): Promise<void> }> {
  const udp: UdpSocket = createSocket('udp4');
  const pick = () => upstreams[Math.floor(Math.random() * upstreams.length)];
  // a workspace runs code nobody vetted: it may flood the relay, but never hold more than its share of the
  // control plane's sockets (queries beyond it are dropped, as a busy resolver drops them)
  const open = new Map<string, number>();
  const take = (who: string) => {
    const n = open.get(who) ?? 0;
    if (n >= PER_WORKSPACE || [...open.values()].reduce((a, b) => a + b, 0) >= IN_ALL) return false;
    open.set(who, n + 1);
    return true;
  };
  const give = (who: string) => {
    const n = (open.get(who) ?? 1) - 1;
    if (n <= 0) open.delete(who);
    else open.set(who, n);
  };
  udp.on('message', (query, from) => {
    const upstream = pick();
    if (!upstream || query.length < 12 || !take(from.address)) return;
    const out = createSocket(upstream.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      out.close();
      give(from.address);
    };
    const timer = setTimeout(finish, 5000);
    out.on('message', (answer) => {
      udp.send(answer, from.port, from.address);
      finish();
    });
    out.on('error', finish);
    out.send(query, 53, upstream);
  });
  udp.on('error', (err) => log.warn({ err }, 'the DNS relay for sandboxes failed'));
  const tcp: Server = createServer((conn) => {
    const upstream = pick();
    const who = conn.remoteAddress ?? '';
    if (!upstream || !take(who)) return conn.destroy();
    const out = connect({ host: upstream, port: 53 });
    conn.pipe(out).pipe(conn);
    let done = false;
    const end = () => {
      conn.destroy();
      out.destroy();
      if (!done) give(who);
      done = true;
    };
    conn.on('error', end).on('close', end);
    out.on('error', end).on('close', end);
    conn.setTimeout(30_000, end);
  });
  await new Promise<void>((resolve, reject) => udp.once('error', reject).bind(53, address, () => resolve()));
  await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(53, address, () => resolve()));
  return {
    async close() {
      udp.close();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}
