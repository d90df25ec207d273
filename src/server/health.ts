import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb";
import { serverStopping } from "../core/errors";
import { serviceUnknown } from "./server-errors";
import type { ServiceImpl } from "./service-impl";

export { ServingStatus };

/**
 * The standard grpc.health.v1.Health service. The whole server ("") and each service are
 * NOT_SERVING until the server is ready and again from the moment it starts stopping.
 */
export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<() => void>();

  constructor(serviceNames: readonly string[]) {
    for (const name of ["", ...serviceNames]) this.statuses.set(name, ServingStatus.NOT_SERVING);
  }

  setAll(status: ServingStatus): void {
    for (const name of this.statuses.keys()) this.statuses.set(name, status);
    for (const notify of this.watchers) notify();
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  impl(): ServiceImpl<typeof Health> {
    return {
      check: async (request) => {
        const status = this.get(request.service);
        if (status === undefined) {
          throw serviceUnknown(request.service);
        }
        return { status };
      },
      watch: (request, ctx) => this.watch(request.service, ctx.signal, ctx.draining),
    };
  }

  /** Sends the status now and at every change, until the call ends. */
  private async *watch(service: string, signal: AbortSignal, draining: AbortSignal) {
    let dirty = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      dirty = true;
      wake?.();
    };
    this.watchers.add(notify);
    signal.addEventListener("abort", notify, { once: true });
    draining.addEventListener("abort", notify, { once: true });
    try {
      let last: ServingStatus | undefined;
      while (!signal.aborted) {
        const status = this.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (status !== last) {
          last = status;
          yield { status };
        }
        // The last status sent while stopping is NOT_SERVING; then the stream ends.
        if (draining.aborted) throw serverStopping();
        if (!dirty) await new Promise<void>((resolve) => (wake = resolve));
        dirty = false;
      }
    } finally {
      this.watchers.delete(notify);
      signal.removeEventListener("abort", notify);
      draining.removeEventListener("abort", notify);
    }
  }
}
