/**
 * A bare Node.js TCP relay (no parsing, no recording): the ceiling for any relay built on Node's
 * stream machinery on this machine. `npm run bench:pg` runs it as its own process beside Vigil so the
 * report separates "what recording costs" from "what a Node data path costs".
 *
 * Usage: node --import tsx test/bench/node-relay.ts <target-port>   (prints `listening <port>`)
 */
import net from 'node:net';

const target = Number(process.argv[2] ?? 5432);
const server = net.createServer((client) => {
  client.setNoDelay(true);
  const up = net.connect(target, '127.0.0.1');
  up.setNoDelay(true);
  client.pipe(up);
  up.pipe(client);
  const end = (): void => {
    client.destroy();
    up.destroy();
  };
  client.on('error', end);
  up.on('error', end);
  client.on('close', end);
  up.on('close', end);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
