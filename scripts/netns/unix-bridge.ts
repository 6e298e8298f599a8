/**
 * Forwards TCP connections made inside a network namespace to a unix socket.
 * Unix sockets live in the file system, not in a network namespace, so a
 * server in the root namespace (for example the tests' fake API server) can be
 * reached from inside a namespace without touching the root namespace's
 * network:
 *
 *   ip netns exec NS node unix-bridge.js 127.0.0.1:6443 /tmp/apiserver.sock
 *
 * Prints "listening" once ready. Exits when its stdin closes (so it never
 * outlives the process that started it).
 */
import net from 'node:net';

function main(): void {
  const [listen, socketPath] = process.argv.slice(2);
  const m = listen ? /^(.*):(\d+)$/.exec(listen) : null;
  if (!m || !socketPath) {
    process.stderr.write('usage: unix-bridge HOST:PORT SOCKET_PATH\n');
    process.exit(2);
  }
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  server.listen(Number(m[2]), m[1], () => process.stdout.write('listening\n'));
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
}

main();
