import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { loadConfig, prepareDataDir } from '../config/index.js';


interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  database?: string;
  authHeader?: string;
  trustedProxy?: string[];
  adminUsername?: string;
  adminPassword?: string;
  tlsCert?: string;
  tlsKey?: string;
  publicUrl?: string;
  runtime?: string;
  logFormat?: string;
  sshPort?: string;
}

/** A numeric port as a number; anything else as typed, for the config schema to refuse with its source. */
function portNumber(value: string | undefined): number | string | undefined {
  return value !== undefined && /^[0-9]{1,5}$/.test(value) ? Number(value) : value;
}

/** `atrium serve`: validates config, opens the database, creates the first admin, listens. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the Atrium control plane (API, portal, proxy) with embedded defaults')
    .option('-c, --config <file>', 'YAML config file (env ATRIUM_CONFIG)')
    .option('--host <address>', 'address to listen on (default 127.0.0.1)')
    .option('-p, --port <port>', 'port to listen on (default 8080)')
    .option('--data-dir <dir>', 'where the SQLite database and state live')
    .option('--database <url>', 'sqlite, sqlite:/path/file.db or postgres://user:pass@host/db')
    .option('--auth-header <name>', 'trusted single sign-on header, e.g. kubeflow-userid')
    .option('--trusted-proxy <address>', 'address or CIDR the SSO header is accepted from (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--admin-username <name>', 'username of the first admin (default admin)')
    .option('--admin-password <password>', 'password of the first admin (default: generated and printed once)')
    .option('--tls-cert <file>', 'TLS certificate (PEM)')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--public-url <url>', 'the URL people use to reach Atrium')
    .option('--runtime <kind>', 'local (runc sandboxes, needs root) or none (workspaces stay pending)')
    .option('--log-format <format>', 'server log lines: auto (text on a terminal, JSON otherwise), text or json')
    .option('--ssh-port <port>', 'port of the SSH gateway (default 2222; 0 picks a free one)')
    .action(async (flags: ServeFlags) => {
      const config = loadConfig({
        file: flags.config,
        flags: {
          'listen.host': flags.host,
          'listen.port': portNumber(flags.port),
          dataDir: flags.dataDir,
          database: flags.database,
          'auth.header': flags.authHeader,
          'auth.trustedProxies': flags.trustedProxy,
          'admin.username': flags.adminUsername,
          'admin.password': flags.adminPassword,
          'tls.cert': flags.tlsCert,
          'tls.key': flags.tlsKey,
          publicUrl: flags.publicUrl,
          'runtime.kind': flags.runtime,
          logFormat: flags.logFormat,
          'ssh.port': portNumber(flags.sshPort),
        },
      });
      prepareDataDir(config.dataDir);
      // The SSH gateway decrypts and encrypts every byte it carries, and ssh2
      // allocates per packet: with V8's default heap growth the old generation
      // ends up just above the live heap, and a busy transfer then runs a
      // mark-compact every 50–90 ms (half the server's CPU, bench/ssh). Growing
      // the heap 4× per collection instead keeps them rare; the control
      // plane's heap is small, so the cost is some tens of MB.
      setFlagsFromString('--heap-growing-percent=300');
      const { createServer } = await import('../server/index.js');
      const server = await createServer(config);
      const admin = await server.identity.bootstrapAdmin(config.admin.username, config.admin.password);
      const url = await server.listen();
      const shown = config.publicUrl ?? url;
      const lines = [
        `Atrium is running at ${shown}`,
        `  data:     ${config.dataDir}`,
        `  database: ${config.database.kind}`,
        `  runtime:  ${config.runtime.kind === 'local' ? 'local (runc sandboxes on this machine)' : 'none (workspaces are admitted and stay pending)'}`,
        server.ssh.port === undefined
          ? '  ssh:      gateway off (ssh.enabled: false); `atrium ssh` and `atrium config-ssh` use the tunnel'
          : `  ssh:      ssh -p ${server.ssh.port} <team>.<workspace>@${config.ssh.publicHost ?? config.ssh.host}   host key ${server.sshKeys.gateway.fingerprint}${server.sshKeys.gatewayCreated ? ' (new)' : ''}`,
      ];
      if (admin) {
        lines.push('', `First start: created the platform admin "${admin.username}".`);
        if (admin.password) lines.push(`  password: ${admin.password}`, '  (shown only now; change it with `atrium password` after signing in)');
      }
      // workspaces open on their own origins under the apps domain; the browser signs in on the portal that domain names
      const port = new URL(url).port;
      const browser = config.publicUrl ?? (config.proxy.isolation === 'origin' ? `${new URL(url).protocol}//${config.proxy.appsDomain}${port ? `:${port}` : ''}` : shown);
      lines.push(
        '',
        'Next:',
        server.portalBuilt
          ? `  open the web portal at ${browser}/ and sign in`
          : '  (the web portal is not built: `npm run build` builds it; the API and CLI work meanwhile)',
        `  atrium login ${shown}`,
        '  atrium profiles ls',
        '  atrium ws create my-first --profile small',
        '  atrium keys add ~/.ssh/id_ed25519.pub && atrium ssh my-first   (or `atrium config-ssh`, then `ssh atrium.<you>.my-first` and VS Code Remote-SSH)',
        `  a Jupyter workspace opens in the browser at ${browser}/w/<team>/<workspace>/ (atrium ws create lab --profile standard-cpu)`,
        '',
      );
      process.stdout.write(lines.join('\n') + '\n');
      const stop = async (signal: string) => {
        process.stderr.write(`received ${signal}, shutting down\n`);
        await server.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
