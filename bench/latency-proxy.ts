// A TCP proxy in front of DynamoDB Local that delays every chunk by half the added latency in each
// direction, so each request/response round trip takes `delayMs` longer: the regime of a real AWS
// region, where concurrency matters far more than on a local endpoint. Order within a connection
// is preserved (timers of equal duration fire in the order they were set).
import { connect, createServer, type Socket } from "node:net";

export interface LatencyProxy {
  /** The proxy's endpoint URL, for AWS_ENDPOINT_URL_DYNAMODB. */
  endpoint: string;
  /** Drops every connection and stops listening (to clients this looks like a lost endpoint). */
  close(): Promise<void>;
}

function forward(from: Socket, to: Socket, delayMs: number): void {
  const send = (fn: () => void) => (delayMs > 0 ? setTimeout(fn, delayMs) : fn());
  from.on("data", (chunk) => send(() => to.writable && to.write(chunk)));
  from.on("end", () => send(() => to.end()));
}

export async function startLatencyProxy(options: {
  target: string;
  delayMs: number;
  port?: number;
}): Promise<LatencyProxy> {
  const target = new URL(options.target);
  const oneWay = options.delayMs / 2;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    forward(client, upstream, oneWay);
    forward(upstream, client, oneWay);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("latency proxy: no address");
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
