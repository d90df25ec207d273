import { VmView } from "../../gen/steward/v1/vm_pb";
import type { VmService } from "../../gen/steward/v1/vm_service_pb";
import { notImplemented } from "../core/errors";
import type { VmRegistry } from "../core/vm-registry";
import type { ServiceImpl } from "../server/service-impl";
import { notYetImplemented } from "./not-implemented";
import { powerStateName, vmClassName, vmMessage } from "./vm-messages";

/** VmService: finding, listing, creating and removing VMs; the rest comes with later work. */
export function vmApi(vms: VmRegistry): ServiceImpl<typeof VmService> {
  return {
    listVms: async (request) => {
      if (request.view === VmView.FULL) throw notImplemented("ListVmsRequest.view VM_VIEW_FULL (the property schema)");
      const page = vms.list({
        filter: {
          klass: vmClassName(request.klass, "klass"),
          state: powerStateName(request.state, "state"),
          tag: request.tag || undefined,
          label: request.label || undefined,
        },
        pageSize: request.pageSize,
        pageToken: request.pageToken,
      });
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
            properties: request.properties,
            pool: request.pool,
            volumePools: request.volumePools,
            requestId: request.requestId,
          },
          ctx.caller,
        ),
      ),
    }),
    createDisposableVm: notYetImplemented,
    cloneVm: notYetImplemented,
    renameVm: notYetImplemented,
    removeVm: async (request) => {
      vms.remove(request.vm, request.allowMissing);
      return {};
    },
    startVm: notYetImplemented,
    shutdownVm: notYetImplemented,
    pauseVm: notYetImplemented,
    unpauseVm: notYetImplemented,
    killVm: notYetImplemented,
    suspendVm: notYetImplemented,
    resumeVm: notYetImplemented,
    listProperties: notYetImplemented,
    getProperty: notYetImplemented,
    setProperty: notYetImplemented,
    resetProperty: notYetImplemented,
    describeProperty: notYetImplemented,
    listFeatures: notYetImplemented,
    getFeature: notYetImplemented,
    setFeature: notYetImplemented,
    removeFeature: notYetImplemented,
    checkFeature: notYetImplemented,
    listTags: notYetImplemented,
    hasTag: notYetImplemented,
    addTag: notYetImplemented,
    removeTag: notYetImplemented,
    getNotes: notYetImplemented,
    setNotes: notYetImplemented,
    getVmStats: notYetImplemented,
    watchVmStats: notYetImplemented,
    console: notYetImplemented,
    getVmAddresses: notYetImplemented,
    getVmOsRelease: notYetImplemented,
  };
}
