import * as grpc from "@grpc/grpc-js";

/**
 * ListVms FULL pages lend their buffer to the response and take it back when it is serialized
 * (server/grpc-definitions.ts, encodedResponse): that holds because grpc-js copies a response's
 * bytes into its own frame as it serializes them, before any other code runs. This checks it
 * still does, with the buffer written over right after the serializer returns.
 */
describe("grpc-js copies a response's bytes as it serializes them", () => {
  it("sends what the serializer returned, though the buffer is written over at once after", async () => {
    const lent = Buffer.alloc(64 * 1024, 1);
    const identity = (bytes: Buffer) => bytes;
    const method = {
      path: "/test.Lending/Get",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: (bytes: Buffer) => {
        queueMicrotask(() => lent.fill(2));
        return bytes;
      },
      responseDeserialize: identity,
    };
    const server = new grpc.Server();
    server.addService({ get: method }, { get: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, lent) });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const received = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(method.path, identity, identity, Buffer.alloc(0), (error, response) => (error ? reject(error) : resolve(response!))),
      );
      expect(received.length).toBe(lent.length);
      expect(received.every((byte) => byte === 1)).toBe(true);
      expect(lent[0]).toBe(2);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
