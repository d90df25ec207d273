import { file_steward_v1_operation } from "../../gen/steward/v1/operation_pb";
import type * as http2 from "node:http2";
import type { DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb";
import { file_google_rpc_status } from "../../gen/google/rpc/status_pb";
import { Health } from "../../gen/grpc/health/v1/health_pb";
import type { Config } from "../config";
import { CallGate, meterRequests } from "./call-gate";
import { AccessLog, accessLogInterceptor } from "./interceptors/access-log";
import type { Interceptor } from "./interceptors/interceptor";
import { streamBoundsInterceptor } from "./interceptors/bounds";
import { requestIdInterceptor } from "./interceptors/request-id";
import { readDeadlinesWhole } from "./grpc-deadlines";
import { detailGrpcJsStatuses } from "./grpc-own-statuses";
import { serviceDefinition } from "./grpc-definitions";
import { HealthStatus, ServingStatus } from "./health";
import { bind, removeSocket, serverCredentials } from "./listen";
import { DescriptorIndex, REFLECTION_SERVICES, reflectionServices } from "./reflection";
import { bindService, type BindingOptions } from "./rpc-binding";
import type { ServiceImpl } from "./service-impl";

/** What a server may be given besides its services. */
export interface ServerExtras {
  /** Interceptors after Steward's own (the access log, request ids), around every RPC. */
  interceptors?: readonly Interceptor[];
  /** Resolves once the state's changes are on disk; every answer waits for it (BindingOptions). */
  durable?: () => Promise<void>;
}

const NOTHING_TO_SYNC = () => Promise.resolve();

/** One service of the contract and its implementation. */
export interface ServiceBinding {
  service: DescService;
  impl: object;
}

export function binding<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceBinding {
  return { service, impl };
}

/**
 * The gRPC server: Steward's services, reflection and health on every listen address. It
 * reports NOT_SERVING until listening and again from the moment stop() begins.
 */
export class StewardServer {
  private readonly server: grpc.Server;
  private readonly health: HealthStatus;
  private readonly draining = new AbortController();
  private readonly stopped = new AbortController();
  private readonly accessLog: AccessLog;
  private bound: string[] = [];

  constructor(
    private readonly config: Config,
    services: readonly ServiceBinding[],
    private readonly log: Logger,
    { interceptors = [], durable = NOTHING_TO_SYNC }: ServerExtras = {},
  ) {
    readDeadlinesWhole();
    detailGrpcJsStatuses();
    meterRequests();
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": config.maxMessageBytes,
      "grpc.max_send_message_length": config.maxMessageBytes,
      // Steward serves no channelz service, so nothing could read what grpc-js would track for
      // it on every call and connection.
      "grpc.enable_channelz": 0,
      "grpc.max_concurrent_streams": config.connections.maxStreamsPerConnection,
      "grpc.max_connection_idle_ms": config.connections.idleMs,
      "grpc.keepalive_time_ms": config.connections.keepaliveMs,
      "grpc.keepalive_timeout_ms": config.connections.keepaliveTimeoutMs,
    });
    raiseHeaderCeilings(this.server);
    widenReceiveWindows(this.server);
    gateStreams(this.server, new CallGate({ ...config.connections, maxMessageBytes: config.maxMessageBytes }, log));
    this.health = new HealthStatus(services.map((s) => s.service.typeName));
    // The error details and the operations' metadata are offered too, so reflection-driven
    // clients can decode them.
    const index = new DescriptorIndex([...services.map((s) => s.service), Health, ...REFLECTION_SERVICES], [
      file_google_rpc_status,
      file_google_rpc_error_details,
      file_steward_v1_operation,
    ]);
    const reflection = reflectionServices(index);
    this.accessLog = new AccessLog(log);
    // Every open stream listens to these two: thousands of listeners are expected, not a leak.
    setMaxListeners(Infinity, this.draining.signal, this.stopped.signal);
    const options: BindingOptions = {
      log,
      interceptors: [...serverInterceptors(this.accessLog, log), streamBoundsInterceptor(config.connections.maxStreams), ...interceptors],
      draining: this.draining.signal,
      stopped: this.stopped.signal,
      clientCertificates: Boolean(config.tls?.clientCaFile),
      durable,
    };
    for (const { service, impl } of [...services, binding(Health, this.health.impl()), reflection.v1, reflection.v1alpha]) {
      this.server.addService(serviceDefinition(service), bindService(service, impl as ServiceImpl<DescService>, options));
    }
  }

  /** The addresses listened on, with the ports chosen for port 0. */
  get addresses(): readonly string[] {
    return this.bound;
  }

  async listen(): Promise<void> {
    const tls = serverCredentials(this.config.tls);
    try {
      for (const address of this.config.listen) this.bound.push(await bind(this.server, address, tls));
    } catch (error) {
      this.server.forceShutdown();
      this.bound.forEach(removeSocket);
      throw error;
    }
    this.health.setAll(ServingStatus.SERVING);
    this.log.info(
      { addresses: this.bound, tls: Boolean(this.config.tls), mtls: Boolean(this.config.tls?.clientCaFile) },
      "listening",
    );
  }

  /**
   * Stops accepting calls, ends endless streams, lets other calls finish for up to the grace
   * period, then cuts what is left.
   */
  async stop(): Promise<void> {
    const graceMs = this.config.shutdownGraceMs;
    this.health.setAll(ServingStatus.NOT_SERVING);
    this.draining.abort();
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => {
        this.log.warn({ graceMs }, "calls still running after the grace period: cutting them");
        this.stopped.abort();
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(cut);
        resolve();
      });
    });
    this.bound.forEach(removeSocket);
    this.accessLog.drain();
  }
}

/**
 * The interceptors around every RPC, the first outermost: the access log sees each call end,
 * whatever an interceptor after it decides; the request id is set before anything logs or
 * answers. Authorization comes after them (with its issue), so a refused call is logged too.
 */
export function serverInterceptors(accessLog: AccessLog, log: Logger): Interceptor[] {
  return [accessLogInterceptor(accessLog, log), requestIdInterceptor];
}

/**
 * The gate goes before grpc-js's own handling of every HTTP/2 server it makes (one per address),
 * as each is set up and before it listens. grpc-js has no hook for this; a test fails if an
 * upgrade stops calling what this wraps.
 */
function gateStreams(server: grpc.Server, gate: CallGate): void {
  const internals = server as unknown as { _setupHandlers: (http2Server: http2.Http2Server | null, ...rest: unknown[]) => void };
  const setup = internals._setupHandlers;
  internals._setupHandlers = function (http2Server, ...rest) {
    setup.call(this, http2Server, ...rest);
    if (http2Server) gate.guard(http2Server);
  };
}

/**
 * What a client may send ahead of the server's reading, per stream and per connection. HTTP/2's
 * 64 KiB default makes a volume import wait for a window update every 64 KiB, a round trip
 * each: a few MiB keeps a 1 MiB-chunk stream flowing. It bounds nothing of Steward's memory (the
 * call gate does, counting what handlers have not taken).
 */
const STREAM_RECEIVE_WINDOW = 4 * 1024 * 1024;
const CONNECTION_RECEIVE_WINDOW = 16 * 1024 * 1024;

function widenReceiveWindows(server: grpc.Server): void {
  const options = (server as unknown as { commonServerOptions: http2.ServerOptions }).commonServerOptions;
  options.settings = { ...options.settings, initialWindowSize: STREAM_RECEIVE_WINDOW };
  const internals = server as unknown as { _setupHandlers: (http2Server: http2.Http2Server | null, ...rest: unknown[]) => void };
  const setup = internals._setupHandlers;
  internals._setupHandlers = function (http2Server, ...rest) {
    setup.call(this, http2Server, ...rest);
    http2Server?.on("session", (session: http2.ServerHttp2Session) => session.setLocalWindowSize(CONNECTION_RECEIVE_WINDOW));
  };
}

/**
 * Node refuses a stream whose headers pass its ceilings (128 headers, 64 KiB) with
 * ENHANCE_YOUR_CALM, which clients see as a transport failure, not a status. Raised well past
 * Steward's own bounds (call-gate.ts), headers between the two get a status that says
 * what is wrong. grpc-js passes these options to http2.createServer as they are; it has no
 * option of its own for them.
 */
function raiseHeaderCeilings(server: grpc.Server): void {
  const options = (server as unknown as { commonServerOptions: http2.ServerOptions }).commonServerOptions;
  options.maxHeaderListPairs = 1024;
  options.settings = { ...options.settings, maxHeaderListSize: 256 * 1024 };
}
