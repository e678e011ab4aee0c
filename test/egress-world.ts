import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './sandbox.js';

/**
 * A stand-in for the internet and a private network, inside a network
 * namespace the test makes: nothing it sends ever leaves the machine. The
 * host reaches it by a veth (`uplink`), which Atrium is told is its uplink.
 * Behind it, on every address below, an HTTP server on port 80 (a page and
 * a Python package index with one wheel) and, at the gateway, a DNS server
 * that knows `files.test`.
 */

export const WORLD = {
  /** the host's end of the uplink, and the world's (the gateway) */
  hostAddress: '203.0.113.1',
  gateway: '203.0.113.2',
  /** a public-looking host */
  public: '198.51.100.10',
  /** hosts no workspace may reach, each serving the same page */
  private: { '10/8': '10.99.0.10', '172.16/12': '172.16.5.10', '192.168/16': '192.168.77.10', 'metadata 169.254.169.254': '169.254.169.254', 'CGNAT 100.64/10': '100.64.1.10' },
  page: 'hello from the public test host',
  greeting: 'hello from the test index',
};

export interface World {
  /** the host's end of the veth: Atrium's `runtime.egress.uplink` */
  uplink: string;
  /** the world's network namespace, for services a test runs there */
  ns: string;
  close(): Promise<void>;
}

const DNS_SERVER = `
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += q[i] + 1
    qtype = struct.unpack('>H', q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    name = '.'.join(labels).lower()
    if name == 'files.test' and qtype == 1:
        answer = b'\\xc0\\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + socket.inet_aton(sys.argv[2])
        s.sendto(q[:2] + b'\\x81\\x80' + struct.pack('>HHHH', 1, 1, 0, 0) + question + answer, peer)
    elif name == 'files.test':
        s.sendto(q[:2] + b'\\x81\\x80' + struct.pack('>HHHH', 1, 0, 0, 0) + question, peer)
    else:
        s.sendto(q[:2] + b'\\x81\\x83' + struct.pack('>HHHH', 1, 0, 0, 0) + question, peer)
`;

const WHEEL = `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('hello_atrium/__init__.py', 'GREETING = %r\\n' % sys.argv[2])
    z.writestr('hello_atrium-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: hello-atrium\\nVersion: 1.0\\n')
    z.writestr('hello_atrium-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: atrium-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
    z.writestr('hello_atrium-1.0.dist-info/RECORD', 'hello_atrium/__init__.py,,\\nhello_atrium-1.0.dist-info/METADATA,,\\nhello_atrium-1.0.dist-info/WHEEL,,\\nhello_atrium-1.0.dist-info/RECORD,,\\n')
`;

async function must(file: string, args: string[]): Promise<string> {
  const r = await run(file, args);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** `bigFile`: also serve `/big`, this many bytes (for throughput). */
export async function startWorld(opts: { bigFile?: number } = {}): Promise<World> {
  const tag = String(process.pid % 100000);
  const ns = `atrium-world-${tag}`;
  const uplink = `atwup${tag}`;
  const files = mkdtempSync(join(tmpdir(), 'atrium-world-'));
  const children: ChildProcess[] = [];
  const close = async () => {
    for (const c of children) c.kill('SIGKILL');
    await run('ip', ['link', 'del', uplink]);
    await run('ip', ['netns', 'del', ns]);
    rmSync(files, { recursive: true, force: true });
  };
  try {
    writeFileSync(join(files, 'index.html'), `${WORLD.page}\n`);
    if (opts.bigFile) await must('truncate', ['-s', String(opts.bigFile), join(files, 'big')]);
    mkdirSync(join(files, 'simple', 'hello-atrium'), { recursive: true });
    await must('/usr/bin/python3', ['-c', WHEEL, join(files, 'hello_atrium-1.0-py3-none-any.whl'), WORLD.greeting]);
    writeFileSync(join(files, 'simple', 'index.html'), '<a href="hello-atrium/">hello-atrium</a>\n');
    writeFileSync(join(files, 'simple', 'hello-atrium', 'index.html'), '<a href="../../hello_atrium-1.0-py3-none-any.whl">hello_atrium-1.0-py3-none-any.whl</a>\n');
    await must('ip', ['netns', 'add', ns]);
    await must('ip', ['link', 'add', uplink, 'type', 'veth', 'peer', 'name', 'up0', 'netns', ns]);
    await must('ip', ['addr', 'add', `${WORLD.hostAddress}/24`, 'dev', uplink]);
    await must('ip', ['link', 'set', uplink, 'up']);
    const inWorld = [`addr add ${WORLD.gateway}/24 dev up0`, 'link set up0 up', 'link set lo up', ...[WORLD.public, ...Object.values(WORLD.private)].map((a) => `addr add ${a}/32 dev lo`)];
    for (const line of inWorld) await must('ip', ['-n', ns, ...line.split(' ')]);
    const inNs = (args: string[]) => spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' });
    children.push(inNs(['/usr/bin/python3', '-m', 'http.server', '80', '--bind', '0.0.0.0', '--directory', files]));
    children.push(inNs(['/usr/bin/python3', '-c', DNS_SERVER, WORLD.gateway, WORLD.public]));
    // both listening before any test asks
    for (let i = 0; i < 100; i++) {
      const r = await run('ip', ['netns', 'exec', ns, 'curl', '-sf', '-m', '1', `http://${WORLD.public}/`]);
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    return { uplink, ns, close };
  } catch (err) {
    await close();
    throw err;
  }
}
