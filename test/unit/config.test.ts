import * as path from "node:path";
import { ConfigError, DEFAULT_DATA_DIR, DEFAULT_MAX_MESSAGE_BYTES, parseListenAddress, parseServeConfig } from "../../src/config";

describe("parseServeConfig", () => {
  it("defaults to loopback TCP and a unix socket in the data folder", () => {
    const config = parseServeConfig([], {});
    expect(config.dataDir).toBe(DEFAULT_DATA_DIR);
    expect(config.listen).toEqual([
      { kind: "tcp", host: "127.0.0.1", port: 50051, text: "127.0.0.1:50051" },
      { kind: "unix", path: path.join(DEFAULT_DATA_DIR, "steward.sock"), text: `unix:${DEFAULT_DATA_DIR}/steward.sock` },
    ]);
    expect(config.hypervisor).toBe("auto");
    expect(config.logLevel).toBe("info");
    expect(config.tls).toBeUndefined();
    expect(config.maxMessageBytes).toBe(DEFAULT_MAX_MESSAGE_BYTES);
    expect(config.connections).toEqual({ maxStreamsPerConnection: 256, maxStreams: 1024, maxCalls: 4096, maxConnections: 1024, maxPendingRequestBytes: 256 * 1024 * 1024, idleMs: 300_000, keepaliveMs: 120_000, keepaliveTimeoutMs: 20_000 });
    expect(config.shutdownGraceMs).toBe(5000);
  });

  it("takes every flag, repeated --listen included", () => {
    const config = parseServeConfig(
      ["--listen", "127.0.0.1:7000", "--listen", "unix:/run/s.sock", "--listen", "[::1]:7001", "--data-dir", "/srv/st", "--hypervisor", "sim", "--log-level", "debug", "--shutdown-grace", "2", "--max-message-bytes", "2097152"],
      {},
    );
    expect(config.listen.map((a) => a.kind)).toEqual(["tcp", "unix", "tcp"]);
    expect(config.listen[2]).toMatchObject({ host: "::1", port: 7001 });
    expect(config).toMatchObject({ dataDir: "/srv/st", hypervisor: "sim", logLevel: "debug", shutdownGraceMs: 2000, maxMessageBytes: 2097152 });
  });

  it("reads STEWARD_* variables, and a flag wins over its variable", () => {
    const env = { STEWARD_LISTEN: "127.0.0.1:1, unix:/tmp/x.sock", STEWARD_DATA_DIR: "/env/dir", STEWARD_HYPERVISOR: "qemu", STEWARD_LOG_LEVEL: "warn" };
    const fromEnv = parseServeConfig([], env);
    expect(fromEnv.listen.map((a) => a.text)).toEqual(["127.0.0.1:1", "unix:/tmp/x.sock"]);
    expect(fromEnv).toMatchObject({ dataDir: "/env/dir", hypervisor: "qemu", logLevel: "warn" });
    expect(parseServeConfig(["--hypervisor", "sim", "--data-dir", "/flag"], env)).toMatchObject({ hypervisor: "sim", dataDir: "/flag" });
  });

  it("refuses a non-loopback address without TLS, saying how to enable it", () => {
    for (const address of ["0.0.0.0:50051", "192.168.1.4:1", "[::]:50051", "example.com:443"]) {
      expect(() => parseServeConfig(["--listen", address], {})).toThrow(ConfigError);
    }
    expect(() => parseServeConfig(["--listen", "0.0.0.0:50051"], {})).toThrow(/--tls-cert FILE --tls-key FILE/);
  });

  it("refuses a non-loopback address with TLS but no client CA: callers there must say who they are", () => {
    expect(() => parseServeConfig(["--listen", "0.0.0.0:50051", "--tls-cert", "c.pem", "--tls-key", "k.pem"], {})).toThrow(/TLS without --tls-client-ca/);
    expect(() => parseServeConfig(["--listen", "0.0.0.0:50051", "--tls-cert", "c.pem", "--tls-key", "k.pem"], {})).toThrow(/--tls-client-ca FILE \(mTLS\)/);
    // Loopback with TLS alone is fine: only the host's own users reach it.
    expect(parseServeConfig(["--listen", "127.0.0.1:50051", "--tls-cert", "c.pem", "--tls-key", "k.pem"], {}).tls?.clientCaFile).toBeUndefined();
  });

  it("accepts a non-loopback address with TLS", () => {
    const config = parseServeConfig(["--listen", "0.0.0.0:50051", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem"], {});
    expect(config.tls).toEqual({ certFile: path.resolve("c.pem"), keyFile: path.resolve("k.pem"), clientCaFile: path.resolve("ca.pem") });
  });

  it("refuses incomplete TLS settings", () => {
    expect(() => parseServeConfig(["--tls-cert", "c.pem"], {})).toThrow("--tls-cert and --tls-key go together");
    expect(() => parseServeConfig(["--tls-client-ca", "ca.pem"], {})).toThrow(/mTLS is TLS first/);
  });

  it("takes the connection bounds, from flags or STEWARD_* variables", () => {
    const config = parseServeConfig(["--max-streams", "10", "--idle-timeout", "2", "--max-calls", "20", "--max-pending-request-bytes", "8388608"], {
      STEWARD_KEEPALIVE: "30",
      STEWARD_KEEPALIVE_TIMEOUT: "5",
      STEWARD_MAX_CONNECTIONS: "7",
    });
    expect(config.connections).toEqual({
      maxStreamsPerConnection: 256,
      maxStreams: 10,
      maxCalls: 20,
      maxConnections: 7,
      maxPendingRequestBytes: 8 * 1024 * 1024,
      idleMs: 2000,
      keepaliveMs: 30_000,
      keepaliveTimeoutMs: 5000,
    });
    expect(() => parseServeConfig(["--max-streams", "0"], {})).toThrow(/--max-streams 0/);
    // One request of the largest size must fit in what the server holds of requests under way.
    expect(() => parseServeConfig(["--max-message-bytes", "2097152", "--max-pending-request-bytes", "2097151"], {})).toThrow(
      /--max-pending-request-bytes 2097151: expected at least 2097152/,
    );
    // Durations a timer cannot hold would fire at once: refused.
    for (const flag of ["--idle-timeout", "--keepalive", "--keepalive-timeout", "--shutdown-grace", "--events-heartbeat"]) {
      expect(() => parseServeConfig([flag, "3000000"], {})).toThrow(new RegExp(`${flag} 3000000: expected at most 2147483 seconds`));
    }
  });

  it("names the flag of a bad value", () => {
    expect(() => parseServeConfig(["--hypervisor", "xen"], {})).toThrow("--hypervisor xen: expected one of auto, qemu, sim");
    expect(() => parseServeConfig(["--log-level", "loud"], {})).toThrow(/--log-level loud/);
    expect(() => parseServeConfig(["--shutdown-grace=-1"], {})).toThrow(/--shutdown-grace -1/);
    expect(() => parseServeConfig(["--max-message-bytes", "lots"], {})).toThrow(/--max-message-bytes lots/);
    expect(() => parseServeConfig(["--max-message-bytes", "4096"], {})).toThrow(/--max-message-bytes 4096: expected at least 1048576: the largest VM view/);
    expect(() => parseServeConfig(["--frobnicate"], {})).toThrow(/see steward serve --help/);
  });
});

describe("numeric settings", () => {
  it("are each read from its flag, else its STEWARD_* variable, the flag winning", () => {
    const env = {
      STEWARD_MAX_STREAMS: "7",
      STEWARD_MAX_CALLS: "8",
      STEWARD_MAX_CONNECTIONS: "9",
      STEWARD_MAX_PENDING_REQUEST_BYTES: "99999999",
      STEWARD_EVENTS_RETAINED: "11",
      STEWARD_EVENTS_BUFFER: "12",
      STEWARD_EVENTS_HEARTBEAT: "13",
      STEWARD_IDLE_TIMEOUT: "14",
      STEWARD_KEEPALIVE: "15",
      STEWARD_KEEPALIVE_TIMEOUT: "16",
      STEWARD_SHUTDOWN_GRACE: "17",
      STEWARD_MAX_MESSAGE_BYTES: "2000000",
    };
    const config = parseServeConfig(["--data-dir", "/tmp/steward-config-test"], env);
    expect(config.connections).toMatchObject({ maxStreams: 7, maxCalls: 8, maxConnections: 9, maxPendingRequestBytes: 99999999, idleMs: 14000, keepaliveMs: 15000, keepaliveTimeoutMs: 16000 });
    expect(config.events).toMatchObject({ retained: 11, subscriberBuffer: 12, heartbeatMs: 13000 });
    expect([config.shutdownGraceMs, config.maxMessageBytes]).toEqual([17000, 2000000]);
    expect(parseServeConfig(["--data-dir", "/tmp/steward-config-test", "--max-calls", "3"], env).connections.maxCalls).toBe(3);
    expect(() => parseServeConfig(["--data-dir", "/tmp/steward-config-test"], { STEWARD_EVENTS_BUFFER: "-2" })).toThrow("--events-buffer -2: expected a positive number");
  });

  it("take a pool's low-space threshold as a percentage, 0 for never", () => {
    expect(parseServeConfig([], {}).poolSpaceLowPercent).toBe(10);
    expect(parseServeConfig(["--pool-space-low", "2.5"], {}).poolSpaceLowPercent).toBe(2.5);
    expect(parseServeConfig([], { STEWARD_POOL_SPACE_LOW: "0" }).poolSpaceLowPercent).toBe(0);
    for (const bad of ["100", "-1", "lots"]) expect(() => parseServeConfig([`--pool-space-low=${bad}`], {})).toThrow(`--pool-space-low ${bad}: expected a percentage`);
  });
});

describe("parseListenAddress", () => {
  it("parses host:port, [v6]:port and unix paths", () => {
    expect(parseListenAddress("localhost:0")).toMatchObject({ kind: "tcp", host: "localhost", port: 0 });
    expect(parseListenAddress("[::1]:80")).toMatchObject({ kind: "tcp", host: "::1", port: 80 });
    expect(parseListenAddress("unix:///run/steward.sock")).toMatchObject({ kind: "unix", path: "/run/steward.sock" });
  });

  it("refuses what is not an address", () => {
    for (const bad of ["nohost", "host:", ":80", "host:99999", "unix:", "::1:80"]) {
      expect(() => parseListenAddress(bad)).toThrow(ConfigError);
    }
  });
});
