/**
 * The baseline for bench/unary: a bare grpc-js server that answers GetHostInfo's path with a
 * response of the same bytes, held in memory. No decoding, no logging, no context: what
 * grpc-js alone costs. With --echo-request-id it also sends an x-request-id response header,
 * as Steward does, to show what that header alone costs. Prints its port on stdout.
 *
 *   node bare-server.js RESPONSE_BASE64 [--echo-request-id] [--path /pkg.Service/Method]
 */
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";

const response = Buffer.from(process.argv[2] ?? "", "base64");
const echoRequestId = process.argv.includes("--echo-request-id");
const pathFlag = process.argv.indexOf("--path");
const path = pathFlag > 0 ? process.argv[pathFlag + 1] : "/steward.v1.HostService/GetHostInfo";
const identity = (bytes: Buffer) => bytes;

function getHostInfo(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
  if (echoRequestId) {
    const headers = new grpc.Metadata();
    headers.set("x-request-id", (call.metadata.get("x-request-id")[0]) ?? randomUUID());
    call.sendMetadata(headers);
  }
  callback(null, response);
}

const server = new grpc.Server();
server.addService(
  {
    getHostInfo: {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  { getHostInfo },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`${port}\n`);
});
process.on("SIGTERM", () => server.forceShutdown());
