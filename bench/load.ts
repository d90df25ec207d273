import * as grpc from "@grpc/grpc-js";

/**
 * Closed-loop load over one channel: `concurrency` callers each send the next call when the
 * last one answers. Both servers are called with the same raw-bytes client, so the client's
 * cost is the same on both sides of a comparison.
 */

export interface LoadResult {
  calls: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

export class RawUnaryClient {
  private readonly client: grpc.Client;

  constructor(
    address: string,
    private readonly path: string,
    private readonly request: Buffer,
  ) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  /** One call, with the client's request or another one. */
  call(request = this.request): Promise<Buffer> {
    const identity = (bytes: Buffer) => bytes;
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(this.path, identity, identity, request, (error, response) =>
        error ? reject(error) : resolve(response!),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}

export async function runLoad(client: RawUnaryClient, concurrency: number, durationMs: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  const end = started + BigInt(durationMs) * 1_000_000n;
  const worker = async () => {
    while (process.hrtime.bigint() < end) {
      const t0 = process.hrtime.bigint();
      await client.call();
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { calls: latencies.length, seconds, throughput: latencies.length / seconds, p50Ms: at(0.5), p99Ms: at(0.99) };
}
