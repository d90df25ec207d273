/**
 * The baseline for bench/unary: a bare grpc-js server that answers GetHostInfo's path with a
 * response of the same bytes, held in memory. No decoding, no logging, no context: what
 * grpc-js alone costs. Prints its port on stdout.
 */
import * as grpc from "@grpc/grpc-js";

const response = Buffer.from(process.argv[2] ?? "", "base64");
const server = new grpc.Server();
const identity = (bytes: Buffer) => bytes;
server.addService(
  {
    getHostInfo: {
      path: "/steward.v1.HostService/GetHostInfo",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  { getHostInfo: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, response) },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`${port}\n`);
});
process.on("SIGTERM", () => server.forceShutdown());
