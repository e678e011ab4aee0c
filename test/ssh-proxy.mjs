// ssh ProxyCommand: joins stdin/stdout to a workspace's SSH socket (a Unix socket path).
import { connect } from 'node:net';
const socket = connect(process.argv[2]);
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on('close', () => process.exit(0));
socket.on('error', (err) => {
  process.stderr.write(`proxy: ${err.message}\n`);
  process.exit(1);
});
