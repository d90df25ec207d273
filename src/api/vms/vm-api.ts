import { AddressFamily, FeatureScope, VmView } from "../../../gen/steward/v1/vm_pb";
import { CloneVmResponseSchema, type ConsoleRequest, CreateVmResponseSchema, KillWho, type VmService } from "../../../gen/steward/v1/vm_service_pb";
import { InvalidFieldError } from "../../core/errors";
import type { CallContext } from "../../core/shared/call-context";
import type { VmConsoles } from "../../core/lifecycle/vm-console";
import type { VmGuestFacts } from "../../core/lifecycle/vm-guest-facts";
import type { VmStatsReader } from "../../core/lifecycle/vm-stats";
import type { VmPause } from "../../core/lifecycle/vm-pause";
import type { VmStart } from "../../core/lifecycle/vm-start";
import type { VmStop } from "../../core/lifecycle/vm-stop";
import type { VmProperties } from "../../core/vms/properties/vm-properties";
import type { VmReadModel } from "../../core/vms/read-model/vm-read-model";
import type { Operations } from "../../core/operations/operations";
import { pageOf, type PageTokens } from "../../core/shared/page-token";
import type { CloneRequest, VmCloning } from "../../core/vms/vm-cloning";
import type { VmCreation } from "../../core/vms/vm-creation";
import { newVmOf } from "./new-vm-messages";
import { invalidKillWho } from "../../core/lifecycle/lifecycle-errors";
import { invalidFeatureScope } from "../../core/vms/vm-errors";
import { vmTarget } from "../../core/vms/vm-etag";
import type { KillWho as DomainKillWho } from "../../ports/hypervisor";
import type { FeatureScope as DomainFeatureScope, VmFeatures } from "../../core/vms/vm-features";
import type { VmNotes } from "../../core/vms/vm-notes";
import type { VmRemoval } from "../../core/vms/vm-removal";
import type { VmRenaming } from "../../core/vms/vm-renaming";
import type { VmTags } from "../../core/vms/vm-tags";
import type { ServiceImpl } from "../../server/service-impl";
import { basicVmSize, fullPageMessage, fullVmSizer } from "../encoding/vm-page-encoding";
import { durationMs } from "../durations";
import { operationMessage, responseResult } from "../operations/operation-messages";
import { descriptionMessage, domainValue, propertyMessage } from "./property-messages";
import { statsMessage } from "./stats-messages";
import { powerStateMessage, powerStateName, runtimeMessage, vmClassName, vmMessage } from "./vm-messages";

/** The core parts VmService calls. */
export interface VmParts {
  readModel: VmReadModel;
  creation: VmCreation;
  cloning: VmCloning;
  removal: VmRemoval;
  renaming: VmRenaming;
  starting: VmStart;
  stopping: VmStop;
  pausing: VmPause;
  consoles: VmConsoles;
  guestFacts: VmGuestFacts;
  stats: VmStatsReader;
  properties: VmProperties;
  tags: VmTags;
  features: VmFeatures;
  notes: VmNotes;
  operations: Operations;
  pageTokens: PageTokens;
}

/**
 * VmService: each handler maps the request to the core's terms, calls the core with the call's
 * context, and maps the answer; stats, addresses and OS release come with the guest agent's
 * and QEMU's facts.
 */
export interface VmApiLimits {
  /** The most bytes the VMs of a ListVms page may hold: a message's, less room for the rest. */
  pageBytes: number;
}

export function vmApi(parts: VmParts, limits: VmApiLimits): ServiceImpl<typeof VmService> {
  const { readModel, starting, stopping, pausing, properties, tags, features, notes, operations } = parts;
  return {
    listVms: async (request) => {
      const page = readModel.list({
        filter: {
          klass: vmClassName(request.klass, "klass"),
          state: powerStateName(request.state, "state"),
          tag: request.tag || undefined,
          label: request.label || undefined,
          pid: request.pid || undefined,
        },
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        full: request.view === VmView.FULL,
        budget: { maxBytes: limits.pageBytes, sizeOf: request.view === VmView.FULL ? fullVmSizer() : basicVmSize },
      });
      if (request.view === VmView.FULL) return fullPageMessage(page);
      return { vms: page.vms.map(vmMessage), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
    getVm: async (request) => ({ vm: vmMessage(readModel.get(request.vm)) }),
    createVm: async (request, ctx) => {
      const asked = newVmOf(request);
      // Importing an image is long work, counted in its bytes.
      const unit = Object.values(asked.volumes ?? {}).some((content) => content.kind === "image") ? ("bytes" as const) : ("steps" as const);
      const spec = { kind: "create-vm" as const, method: ctx.method, unit, requestId: request.requestId, request: asked };
      return operationMessage(
        await operations.start(spec, ctx, {
          check: () => parts.creation.check(asked),
          work: (opCtx, progress) => parts.creation.create(asked, opCtx, { progress }),
          encode: (vm) => responseResult(CreateVmResponseSchema, { vm: vmMessage(vm) }),
          made: (vm) => vm,
        }),
      );
    },
    createDisposableVm: async (request, ctx) => ({
      vm: vmMessage(await parts.creation.createDisposable({ template: request.template, label: request.label, idempotencyKey: request.requestId }, ctx)),
    }),
    cloneVm: async (request, ctx) => {
      const asked: CloneRequest = {
        vm: request.vm,
        newName: request.newName,
        klass: vmClassName(request.klass, "klass"),
        pool: request.pool,
        volumePools: request.volumePools,
        readOnly: request.readOnly,
      };
      const source = parts.readModel.find(request.vm);
      const spec = { kind: "clone-vm" as const, method: ctx.method, target: source, unit: "bytes" as const, requestId: request.requestId, request: asked };
      return operationMessage(
        await operations.start(spec, ctx, {
          check: () => parts.cloning.check(asked),
          work: (opCtx, progress) => parts.cloning.clone(asked, opCtx, { progress }),
          encode: (vm) => responseResult(CloneVmResponseSchema, { vm: vmMessage(vm) }),
        }),
      );
    },
    renameVm: async (request, ctx) => ({ vm: vmMessage(await parts.renaming.rename(vmTarget(request.vm, request.etag), request.newName, ctx)) }),
    removeVm: async (request, ctx) => {
      await parts.removal.remove(vmTarget(request.vm, request.etag), request.allowMissing, ctx);
      return {};
    },
    startVm: async (request, ctx) => {
      const state = await starting.start(request.vm, ctx, { waitForGuest: request.waitForGuest });
      const vm = readModel.find(request.vm);
      return { state: powerStateMessage(state), runtime: vm && runtimeMessage(vm) };
    },
    shutdownVm: async (request, ctx) => {
      const timeoutMs = request.timeout ? durationMs(request.timeout, "timeout") : undefined;
      const state = await stopping.shutdown(request.vm, { force: request.force, wait: request.wait, timeoutMs }, ctx);
      return { state: powerStateMessage(state) };
    },
    pauseVm: async (request, ctx) => ({ state: powerStateMessage(await pausing.pause(request.vm, ctx)) }),
    unpauseVm: async (request, ctx) => ({ state: powerStateMessage(await pausing.unpause(request.vm, ctx)) }),
    killVm: async (request, ctx) => ({ state: powerStateMessage(await stopping.kill(request.vm, ctx, { signal: request.signal, who: killWho(request.who) })) }),
    suspendVm: async (request, ctx) => ({ state: powerStateMessage(await pausing.suspend(request.vm, ctx)) }),
    resumeVm: async (request, ctx) => ({ state: powerStateMessage(await pausing.resume(request.vm, ctx)) }),
    listProperties: async (request) => {
      const page = pageOf(sortedBy(properties.list(request.vm), (p) => p.spec.name), (p) => p.spec.name, request, parts.pageTokens, { vm: request.vm, list: "properties" });
      return { properties: page.items.map(propertyMessage), nextPageToken: page.nextPageToken };
    },
    getProperty: async (request) => ({ property: propertyMessage(properties.get(request.vm, request.name)) }),
    setProperty: async (request, ctx) => {
      const spec = properties.spec(request.vm, request.name);
      const value = domainValue(spec, request.value, "value");
      return { property: propertyMessage(await properties.set(vmTarget(request.vm, request.etag), request.name, value, ctx)) };
    },
    resetProperty: async (request, ctx) => ({ property: propertyMessage(await properties.reset(vmTarget(request.vm, request.etag), request.name, ctx)) }),
    describeProperty: async (request) => ({ description: descriptionMessage(properties.describe(request.vm, request.name)) }),
    listFeatures: async (request) => {
      const entries = sortedBy(Object.entries(features.list(request.vm)), ([name]) => name);
      const page = pageOf(entries, ([name]) => name, request, parts.pageTokens, { vm: request.vm, list: "features" });
      return { features: Object.fromEntries(page.items), nextPageToken: page.nextPageToken };
    },
    getFeature: async (request) => ({ value: features.get(request.vm, request.name) }),
    setFeature: async (request, ctx) => {
      await features.set(vmTarget(request.vm, request.etag), request.name, request.value, ctx);
      return {};
    },
    removeFeature: async (request, ctx) => {
      await features.remove(vmTarget(request.vm, request.etag), request.name, request.allowMissing, ctx);
      return {};
    },
    checkFeature: async (request) => {
      const found = features.check(request.vm, request.name, featureScope(request.scope));
      return found ? { found: true, value: found.value, sourceVm: found.vm } : { found: false };
    },
    listTags: async (request) => {
      const page = pageOf(sortedBy(tags.list(request.vm), (tag) => tag), (tag) => tag, request, parts.pageTokens, { vm: request.vm, list: "tags" });
      return { tags: page.items, nextPageToken: page.nextPageToken };
    },
    hasTag: async (request) => ({ present: tags.has(request.vm, request.tag) }),
    addTag: async (request, ctx) => ({ added: await tags.add(vmTarget(request.vm, request.etag), request.tag, ctx) }),
    removeTag: async (request, ctx) => ({ removed: await tags.remove(vmTarget(request.vm, request.etag), request.tag, ctx) }),
    getNotes: async (request) => ({ notes: notes.get(request.vm) }),
    setNotes: async (request, ctx) => {
      await notes.set(request.vm, request.notes, ctx);
      return {};
    },
    getVmStats: async (request, ctx) => ({ stats: statsMessage(await parts.stats.sample(request.vm, ctx)) }),
    watchVmStats: async function* (request, ctx) {
      const watch = { vm: request.vm || undefined, intervalMs: request.interval ? durationMs(request.interval, "interval") : undefined };
      for await (const view of parts.stats.watch(watch, ctx, ctx.draining)) yield { stats: statsMessage(view) };
    },
    console: (requests, ctx) => consoleSession(parts.consoles, requests, ctx),
    getVmAddresses: async (request) => ({
      addresses: (await parts.guestFacts.addresses(request.vm)).map(({ family, address }) => ({ family: family === "inet" ? AddressFamily.INET : AddressFamily.INET6, address })),
    }),
    getVmOsRelease: async (request) => ({ fields: await parts.guestFacts.osRelease(request.vm) }),
  };
}

/** A copy of `items` in the order of their keys, as pages go (code units, as `<` compares them). */
function sortedBy<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  return [...items].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
}

const KILL_WHO: Readonly<Record<KillWho, DomainKillWho>> = {
  [KillWho.UNSPECIFIED]: "all",
  [KillWho.LEADER]: "leader",
  [KillWho.ALL]: "all",
};

function killWho(who: KillWho): DomainKillWho {
  const found = KILL_WHO[who] as DomainKillWho | undefined;
  if (!found) throw invalidKillWho(who);
  return found;
}

const FEATURE_SCOPE: Readonly<Record<FeatureScope, DomainFeatureScope>> = {
  [FeatureScope.UNSPECIFIED]: "vm",
  [FeatureScope.TEMPLATE]: "template",
  [FeatureScope.NETVM]: "netvm",
  [FeatureScope.ADMINVM]: "adminvm",
  [FeatureScope.TEMPLATE_AND_ADMINVM]: "template-and-adminvm",
};

function featureScope(scope: FeatureScope): DomainFeatureScope {
  const found = FEATURE_SCOPE[scope];
  if (!found) throw invalidFeatureScope(scope);
  return found;
}

/**
 * A Console call: its first request names the VM, the later ones carry what is typed; the
 * response stream is the console's output until the VM halts or the caller cancels. A refused
 * keystroke (another session types) or a malformed request ends the call with its status.
 */
async function* consoleSession(consoles: VmConsoles, requests: AsyncIterable<ConsoleRequest>, ctx: CallContext): AsyncIterable<{ output: Uint8Array }> {
  const incoming = requests[Symbol.asyncIterator]();
  const first = await incoming.next();
  if (first.done || first.value.kind.case !== "vm") throw new InvalidFieldError("vm", "the first ConsoleRequest must name the VM");
  const session = await consoles.open(first.value.kind.value, ctx);
  let failure: Error | undefined;
  void (async () => {
    for (let next = await incoming.next(); !next.done; next = await incoming.next()) {
      if (next.value.kind.case !== "input") throw new InvalidFieldError("input", "every ConsoleRequest after the first carries input");
      await session.write(next.value.kind.value);
    }
  })().catch((error: unknown) => {
    failure = error instanceof Error ? error : new Error(String(error));
    session.close();
  });
  try {
    for await (const output of session.output) {
      if (failure !== undefined) break;
      yield { output };
    }
    if (failure !== undefined) throw failure;
  } finally {
    // The typing loop is not waited for: it ends with the call's request stream, which the client may hold open.
    session.close();
  }
}
