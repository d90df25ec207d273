import type { Duration } from "@bufbuild/protobuf/wkt";
import { FeatureScope, VmView } from "../../gen/steward/v1/vm_pb";
import type { VmService } from "../../gen/steward/v1/vm_service_pb";
import { InvalidFieldError } from "../core/errors";
import type { VmProperties } from "../core/properties/vm-properties";
import type { VmLifecycle } from "../core/vm-lifecycle";
import type { FeatureScope as DomainFeatureScope, VmFeatures } from "../core/vm-features";
import type { VmNotes } from "../core/vm-notes";
import type { VmRegistry } from "../core/vm-registry";
import type { VmTags } from "../core/vm-tags";
import type { ServiceImpl } from "../server/service-impl";
import { notYetImplemented } from "./not-implemented";
import { descriptionMessage, domainValue, initialValues, propertyMessage } from "./property-messages";
import { fullPageMessage } from "./vm-page-encoding";
import { powerStateMessage, powerStateName, vmClassName, vmMessage } from "./vm-messages";

/** The core parts VmService calls. */
export interface VmParts {
  vms: VmRegistry;
  lifecycle: VmLifecycle;
  properties: VmProperties;
  tags: VmTags;
  features: VmFeatures;
  notes: VmNotes;
}

/** VmService; stats, console, addresses and OS release come with the QEMU adapter. */
export function vmApi(parts: VmParts): ServiceImpl<typeof VmService> {
  const vms = parts.vms;
  return {
    listVms: async (request) => {
      const page = vms.list({
        filter: {
          klass: vmClassName(request.klass, "klass"),
          state: powerStateName(request.state, "state"),
          tag: request.tag || undefined,
          label: request.label || undefined,
        },
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        full: request.view === VmView.FULL,
      });
      if (request.view === VmView.FULL) return fullPageMessage(page);
      return { vms: page.vms.map(vmMessage), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
    getVm: async (request) => ({ vm: vmMessage(vms.get(request.vm)) }),
    createVm: async (request, ctx) => ({
      vm: vmMessage(
        vms.create(
          {
            name: request.name,
            klass: vmClassName(request.klass, "klass"),
            label: request.label,
            template: request.template,
            properties: initialValues(request.properties),
            pool: request.pool,
            volumePools: request.volumePools,
            requestId: request.requestId,
          },
          ctx.caller,
        ),
      ),
    }),
    createDisposableVm: async (request, ctx) => ({
      vm: vmMessage(vms.createDisposable({ template: request.template, label: request.label, requestId: request.requestId }, ctx.caller)),
    }),
    cloneVm: async (request, ctx) => ({
      vm: vmMessage(
        vms.clone(
          {
            vm: request.vm,
            newName: request.newName,
            klass: vmClassName(request.klass, "klass"),
            pool: request.pool,
            volumePools: request.volumePools,
            requestId: request.requestId,
          },
          ctx.caller,
        ),
      ),
    }),
    renameVm: async (request) => ({ vm: vmMessage(parts.vms.rename(request.vm, request.newName)) }),
    removeVm: async (request) => {
      vms.remove(request.vm, request.allowMissing);
      return {};
    },
    startVm: async (request) => ({ state: powerStateMessage(await parts.lifecycle.start(request.vm)) }),
    shutdownVm: async (request) => {
      const timeoutMs = request.timeout ? durationMs(request.timeout, "timeout") : undefined;
      const state = await parts.lifecycle.shutdown(request.vm, { force: request.force, wait: request.wait, timeoutMs });
      return { state: powerStateMessage(state) };
    },
    pauseVm: async (request) => ({ state: powerStateMessage(await parts.lifecycle.pause(request.vm)) }),
    unpauseVm: async (request) => ({ state: powerStateMessage(await parts.lifecycle.unpause(request.vm)) }),
    killVm: async (request) => ({ state: powerStateMessage(await parts.lifecycle.kill(request.vm)) }),
    suspendVm: async (request) => ({ state: powerStateMessage(await parts.lifecycle.suspend(request.vm)) }),
    resumeVm: async (request) => ({ state: powerStateMessage(await parts.lifecycle.resume(request.vm)) }),
    listProperties: async (request) => ({ properties: parts.properties.list(request.vm).map(propertyMessage) }),
    getProperty: async (request) => ({ property: propertyMessage(parts.properties.get(request.vm, request.name)) }),
    setProperty: async (request) => {
      const spec = parts.properties.spec(request.vm, request.name);
      return { property: propertyMessage(parts.properties.set(request.vm, request.name, domainValue(spec, request.value, "value"))) };
    },
    resetProperty: async (request) => ({ property: propertyMessage(parts.properties.reset(request.vm, request.name)) }),
    describeProperty: async (request) => ({ description: descriptionMessage(parts.properties.describe(request.vm, request.name)) }),
    listFeatures: async (request) => ({ features: parts.features.list(request.vm) }),
    getFeature: async (request) => ({ value: parts.features.get(request.vm, request.name) }),
    setFeature: async (request) => {
      parts.features.set(request.vm, request.name, request.value);
      return {};
    },
    removeFeature: async (request) => {
      parts.features.remove(request.vm, request.name, request.allowMissing);
      return {};
    },
    checkFeature: async (request) => {
      const found = parts.features.check(request.vm, request.name, featureScope(request.scope));
      return found ? { found: true, value: found.value, sourceVm: found.vm } : { found: false };
    },
    listTags: async (request) => ({ tags: [...parts.tags.list(request.vm)] }),
    hasTag: async (request) => ({ present: parts.tags.has(request.vm, request.tag) }),
    addTag: async (request) => ({ added: parts.tags.add(request.vm, request.tag) }),
    removeTag: async (request) => ({ removed: parts.tags.remove(request.vm, request.tag) }),
    getNotes: async (request) => ({ notes: parts.notes.get(request.vm) }),
    setNotes: async (request) => {
      parts.notes.set(request.vm, request.notes);
      return {};
    },
    getVmStats: notYetImplemented,
    watchVmStats: notYetImplemented,
    console: notYetImplemented,
    getVmAddresses: notYetImplemented,
    getVmOsRelease: notYetImplemented,
  };
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
  if (!found) throw new InvalidFieldError("scope", `unknown feature scope ${scope}`, "INVALID_FEATURE_SCOPE");
  return found;
}

function durationMs(duration: Duration, field: string): number {
  const ms = Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
  if (ms < 0 || duration.nanos < 0) throw new InvalidFieldError(field, "must not be negative");
  return ms;
}
