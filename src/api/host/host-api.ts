import { pageOf, type PageTokens } from "../../core/shared/page-token";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { HostInfoSchema, HypervisorKind } from "../../../gen/steward/v1/host_pb";
import { GetHostInfoResponseSchema, ListVmClassesResponseSchema, type GetHostInfoResponse, type HostService } from "../../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../../gen/steward/v1/vm_pb";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { GlobalProperties } from "../../core/host/global-properties";
import type { HostInfo, HostInfoReader } from "../../core/host/host-info";
import type { HypervisorKind as DomainHypervisorKind } from "../../core/model/host";
import { VM_CLASSES } from "../../core/model/vm-classes";
import { formatColor, type Label, type Labels } from "../../core/vms/labels";
import { constantResponse } from "../../server/grpc-definitions";
import type { RpcContext } from "../../server/rpc-context";
import { EXPORT_TYPES } from "../exports/block-export-api";
import type { ServiceImpl } from "../../server/service-impl";
import { descriptionMessage, domainValue, propertyMessage } from "../vms/property-messages";
import { VM_CLASS_OF_NAME } from "../vms/vm-messages";

/** The core parts HostService calls. */
export interface HostParts {
  pageTokens: PageTokens;
  hostInfo: HostInfoReader;
  labels: Labels;
  globals: GlobalProperties;
}


const HYPERVISOR_KIND: Readonly<Record<DomainHypervisorKind, HypervisorKind>> = {
  "qemu-kvm": HypervisorKind.QEMU_KVM,
  "qemu-tcg": HypervisorKind.QEMU_TCG,
  sim: HypervisorKind.SIM,
};

/**
 * HostService. `apiFeatures` lists the RPCs this server implements; it is read at call time
 * because it is known only once every service is bound.
 */
export function hostApi({ hostInfo: reader, labels, globals, pageTokens }: HostParts, apiFeatures: () => readonly string[]): ServiceImpl<typeof HostService> {
  const vmClasses = VM_CLASSES.map((spec) => ({
    klass: VM_CLASS_OF_NAME[spec.name],
    name: spec.name,
    description: spec.description,
    templateClass: spec.templateClass ? VM_CLASS_OF_NAME[spec.templateClass] : VmClass.UNSPECIFIED,
    creatable: spec.creatable,
    startable: spec.startable,
  }));
  // Everything in these answers is fixed while the server runs but the caller, and callers
  // are few: build each answer once.
  const hostInfoByCaller = new Map<string, GetHostInfoResponse>();
  const hostInfo = (ctx: RpcContext) =>
    hostInfoByCaller.get(ctx.caller) ??
    cache(
      hostInfoByCaller,
      ctx.caller,
      constantResponse(GetHostInfoResponseSchema, create(GetHostInfoResponseSchema, { host: hostInfoMessage(reader.describe(ctx), apiFeatures()) })),
    );
  const classes = constantResponse(ListVmClassesResponseSchema, create(ListVmClassesResponseSchema, { classes: vmClasses }));
  return {
    getHostInfo: async (_request, ctx) => hostInfo(ctx),
    listVmClasses: async () => classes,
    listLabels: async (request) => {
      const page = pageOf(labels.list(), (label) => String(label.index).padStart(10, "0"), request, pageTokens, { list: "labels" });
      return { labels: page.items.map(labelMessage), nextPageToken: page.nextPageToken };
    },
    getLabel: async (request) => ({ label: labelMessage(labels.get(request.name)) }),
    createLabel: async (request, ctx) => ({ label: labelMessage(labels.create(request.name, request.color, ctx, request.requestId)) }),
    removeLabel: async (request, ctx) => {
      labels.remove(request.name, ctx);
      return {};
    },
    listGlobalProperties: async () => ({ properties: globals.list().map(propertyMessage) }),
    getGlobalProperty: async (request) => ({ property: propertyMessage(globals.get(request.name)) }),
    setGlobalProperty: async (request, ctx) => {
      const spec = globals.spec(request.name);
      return { property: propertyMessage(globals.set(request.name, domainValue(spec, request.value, "value"), ctx)) };
    },
    resetGlobalProperty: async (request, ctx) => ({ property: propertyMessage(globals.reset(request.name, ctx)) }),
    describeGlobalProperty: async (request) => ({ description: descriptionMessage(globals.describe(request.name)) }),
  };
}

function hostInfoMessage(info: HostInfo, apiFeatures: readonly string[]): MessageInitShape<typeof HostInfoSchema> {
  return {
    version: info.version,
    apiVersion: info.apiVersion,
    hostname: info.hostname,
    hostId: info.hostId,
    hypervisor: HYPERVISOR_KIND[info.hypervisor.kind],
    hypervisorVersion: info.hypervisor.version,
    startTime: timestampFromDate(info.startTime),
    capabilities: info.capabilities,
    apiFeatures: apiFeatures as string[],
    caller: info.caller,
    blockExportTypes: info.blockExportTypes.map((type) => EXPORT_TYPES[type]),
  };
}


const MAX_CACHED_CALLERS = 1024;

function cache<V>(map: Map<string, V>, key: string, value: V): V {
  if (map.size >= MAX_CACHED_CALLERS) map.clear();
  map.set(key, value);
  return value;
}

function labelMessage(label: Label) {
  return { name: label.name, color: formatColor(label.color), index: label.index, builtin: label.builtin };
}
