/**
 * The transport's ceiling for bench/storage: a bare grpc-js server with ImportVolume's path,
 * which receives the messages and keeps none, and ExportVolume's, which
 * sends the same 1 MiB message of bytes held in memory, as many times as the request's size
 * says. No decoding, no hashing, no file: what grpc-js alone costs to carry the bytes on this
 * machine, next to which Steward's import and export are judged. Prints its port on stdout.
 *
 *   node bare-stream-server.js
 */
import * as grpc from "@grpc/grpc-js";

const MiB = 1024 * 1024;
const identity = (bytes: Buffer) => bytes;
/** A message of 1 MiB and a few bytes, as large as Steward's chunk messages (filler: the bench's client does not decode it). */
const message = Buffer.alloc(MiB + 16, 0x5a);

function importVolume(call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
  call.on("data", () => undefined);
  // An empty ImportVolumeResponse.
  call.on("end", () => callback(null, Buffer.alloc(0)));
}

/** Sends as many MiB as the request's text says. */
function exportVolume(call: grpc.ServerWritableStream<Buffer, Buffer>): void {
  let left = Number(call.request.toString());
  const pump = () => {
    while (left > 0) {
      left--;
      if (!call.write(message)) return void call.once("drain", pump);
    }
    call.end();
  };
  pump();
}

const method = { requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
const server = new grpc.Server();
server.addService(
  {
    importVolume: { path: "/steward.v1.VolumeService/ImportVolume", requestStream: true, responseStream: false, ...method },
    exportVolume: { path: "/steward.v1.VolumeService/ExportVolume", requestStream: false, responseStream: true, ...method },
  },
  { importVolume, exportVolume },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`${port}\n`);
});
process.on("SIGTERM", () => server.forceShutdown());
