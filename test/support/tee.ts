/**
 * A recording TCP tee for exactness tests: client → tee → gateway. It records, per connection,
 * every byte each way, keyed by the local port of its connection to the gateway — which is the
 * port in the gateway's `client_addr` for that session, so a test can match sessions to tees.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TeeConnection {
  /** Bytes the client sent (client → gateway). */
  c2s: Buffer[];
  /** Bytes the client received (gateway → client). */
  s2c: Buffer[];
  /** "127.0.0.1:port" of the tee's socket toward the gateway, as the gateway sees the client. */
  clientAddr: string;
  closed: Promise<void>;
}

export interface Tee {
  port: number;
  connections: TeeConnection[];
  close(): Promise<void>;
}

export async function startTee(targetPort: number, targetHost = '127.0.0.1'): Promise<Tee> {
  const connections: TeeConnection[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.pause();
    const upstream = connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    const conn: TeeConnection = { c2s: [], s2c: [], clientAddr: '', closed: Promise.resolve() };
    let done!: () => void;
    conn.closed = new Promise((r) => (done = r));
    let open = 2;
    const closeOne = () => {
      if (--open === 0) done();
    };
    upstream.once('connect', () => {
      conn.clientAddr = `${upstream.localAddress}:${upstream.localPort}`;
      connections.push(conn);
      client.resume();
    });
    client.on('data', (d) => {
      conn.c2s.push(Buffer.from(d));
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      conn.s2c.push(Buffer.from(d));
      client.write(d);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', () => {
      upstream.destroy();
      closeOne();
    });
    upstream.on('close', () => {
      client.destroy();
      closeOne();
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
