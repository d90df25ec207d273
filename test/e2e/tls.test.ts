import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient } from "../../src/client/steward-client";
import { makeCertificates, type TestCertificates } from "../fixtures/certificates";
import { rpcError } from "../fixtures/expect-rpc-error";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { createdVm } from "../fixtures/made-vms";

function tlsCredentials(certs: TestCertificates, client?: { cert: string; key: string }) {
  return grpc.credentials.createSsl(
    fs.readFileSync(certs.caCert),
    client ? fs.readFileSync(client.key) : null,
    client ? fs.readFileSync(client.cert) : null,
  );
}

describe("TLS and mTLS", () => {
  let certs: TestCertificates;
  beforeAll(() => (certs = makeCertificates(makeTempDir("steward-certs-"))));
  afterAll(() => removeDir(certs.dir));

  describe("with --tls-cert and --tls-key", () => {
    let server: TestServer;
    beforeAll(async () => (server = await startTestServer(["--tls-cert", certs.serverCert, "--tls-key", certs.serverKey])));
    afterAll(() => server.stop());

    it("speaks TLS on TCP; callers without a client certificate are dom0", async () => {
      const client = createClient(HostService, server.tcp, tlsCredentials(certs), { "grpc.ssl_target_name_override": "localhost" });
      expect((await client.getHostInfo({})).host!.caller).toBe("dom0");
      client.close();
    });

    it("refuses plaintext on the TLS port", async () => {
      const client = createClient(HostService, server.tcp);
      expect((await rpcError(client.getHostInfo({}, { timeoutMs: 3000 }))).code).toBe(grpc.status.UNAVAILABLE);
      client.close();
    });

    it("keeps the unix socket plaintext, guarded by its file mode", async () => {
      const client = createClient(HostService, server.unix);
      expect((await client.getHostInfo({})).host!.caller).toBe("dom0");
      client.close();
    });
  });

  describe("with --tls-client-ca", () => {
    let server: TestServer;
    beforeAll(
      async () =>
        (server = await startTestServer(["--listen", "0.0.0.0:0", "--tls-cert", certs.serverCert, "--tls-key", certs.serverKey, "--tls-client-ca", certs.caCert])),
    );
    afterAll(() => server.stop());

    it("listens beyond loopback, and knows the caller from its certificate", async () => {
      const port = server.app.server.addresses.find((a) => a.startsWith("0.0.0.0:"))!.split(":")[1];
      const client = createClient(HostService, `localhost:${port}`, tlsCredentials(certs, { cert: certs.clientCert, key: certs.clientKey }));
      const { host } = await client.getHostInfo({});
      client.close();
      expect(host!.caller).toBe("cert:orchestrator-1");
      // What the caller creates carries its name.
      const vms = createClient(VmService, `localhost:${port}`, tlsCredentials(certs, { cert: certs.clientCert, key: certs.clientKey }));
      const vm = createdVm(await vms.createVm({ name: "fleet-vm", klass: VmClass.STANDALONE_VM, label: "red" }));
      vms.close();
      expect(vm!.tags).toEqual(["created-by-cert:orchestrator-1"]);
      await server.logs.waitFor((l) => l.method === "steward.v1.HostService/GetHostInfo" && l.caller === "cert:orchestrator-1");
    });

    it("never takes a certificate for the local admin, and tags what its caller makes so a request can name it", async () => {
      const port = server.app.server.addresses.find((a) => a.startsWith("0.0.0.0:"))!.split(":")[1];
      const as = (cert: string, key: string) => tlsCredentials(certs, { cert, key });
      const impostor = createClient(HostService, `localhost:${port}`, as(certs.impostorCert, certs.impostorKey));
      expect((await impostor.getHostInfo({})).host!.caller).toBe("cert:dom0");
      impostor.close();

      const spaced = createClient(VmService, `localhost:${port}`, as(certs.spacedCert, certs.spacedKey));
      const vm = createdVm(await spaced.createVm({ name: "ops-vm", klass: VmClass.STANDALONE_VM, label: "red" }));
      // "cert:Ops Team (1)": the spaces and brackets written as _XX.
      expect(vm!.tags).toEqual(["created-by-cert:Ops_20Team_20_281_29"]);
      expect((await spaced.listVms({ tag: "created-by-cert:Ops_20Team_20_281_29" })).vms.map((v) => v.name)).toEqual(["ops-vm"]);
      expect((await spaced.hasTag({ vm: "ops-vm", tag: "created-by-cert:Ops_20Team_20_281_29" })).present).toBe(true);
      spaced.close();
    });

    it("refuses clients without a certificate, or with one from another CA", async () => {
      for (const client of [
        createClient(HostService, server.tcp, tlsCredentials(certs), { "grpc.ssl_target_name_override": "localhost" }),
        createClient(HostService, server.tcp, tlsCredentials(certs, { cert: certs.strangerCert, key: certs.strangerKey }), {
          "grpc.ssl_target_name_override": "localhost",
        }),
      ]) {
        expect((await rpcError(client.getHostInfo({}, { timeoutMs: 3000 }))).code).toBe(grpc.status.UNAVAILABLE);
        client.close();
      }
    });
  });
});
