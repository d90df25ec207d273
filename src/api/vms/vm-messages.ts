import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AddressFamily,
  HostInterfaceSchema,
  PowerState as PowerStateMessage,
  VmAddressSchema,
  VmClass,
  VmRuntimeSchema,
  type Vm as VmMessage,
  type VmRuntime,
} from "../../../gen/steward/v1/vm_pb";
import type { PowerState } from "../../core/model/power-state";
import type { VmClassName } from "../../core/model/vm-classes";
import type { Vm } from "../../core/vms/read-model/vm-view";
import { invalidPowerState, invalidVmClass } from "../../core/vms/vm-errors";
import { propertyMessage } from "./property-messages";

/** Between the contract's VM messages and enums and the core's VMs. */

export const VM_CLASS_OF_NAME: Readonly<Record<VmClassName, VmClass>> = {
  AdminVM: VmClass.ADMIN_VM,
  TemplateVM: VmClass.TEMPLATE_VM,
  AppVM: VmClass.APP_VM,
  StandaloneVM: VmClass.STANDALONE_VM,
  DispVM: VmClass.DISP_VM,
};

const POWER_STATE: Readonly<Record<PowerState, PowerStateMessage>> = {
  Halted: PowerStateMessage.HALTED,
  Transient: PowerStateMessage.TRANSIENT,
  Running: PowerStateMessage.RUNNING,
  Paused: PowerStateMessage.PAUSED,
  Suspended: PowerStateMessage.SUSPENDED,
  Halting: PowerStateMessage.HALTING,
  Dying: PowerStateMessage.DYING,
  Crashed: PowerStateMessage.CRASHED,
  NA: PowerStateMessage.NA,
};

/** A class named in a request; UNSPECIFIED is undefined (every class, in a filter). */
export function vmClassName(klass: VmClass, field: string): VmClassName | undefined {
  if (klass === VmClass.UNSPECIFIED) return undefined;
  const name = (Object.keys(VM_CLASS_OF_NAME) as VmClassName[]).find((n) => VM_CLASS_OF_NAME[n] === klass);
  if (!name) throw invalidVmClass(field, `unknown VM class ${klass}`);
  return name;
}

/** A power state named in a request; UNSPECIFIED is undefined (every state, in a filter). */
export function powerStateName(state: PowerStateMessage, field: string): PowerState | undefined {
  if (state === PowerStateMessage.UNSPECIFIED) return undefined;
  const name = (Object.keys(POWER_STATE) as PowerState[]).find((n) => POWER_STATE[n] === state);
  if (!name) throw invalidPowerState(field, state);
  return name;
}

export function powerStateMessage(state: PowerState): PowerStateMessage {
  return POWER_STATE[state];
}

/** A VM message, built whole with its $typeName (pages of ListVms hold thousands). */
export function vmMessage(vm: Vm): VmMessage {
  return {
    $typeName: "steward.v1.Vm",
    ...vmDescription(vm),
    state: POWER_STATE[vm.state],
    runtime: runtimeMessage(vm),
    properties: vm.properties?.map(propertyMessage) ?? [],
    features: vm.features ?? {},
  };
}

/** What names and describes a VM: the Vm fields but its state, runtime, properties and features. */
export function vmDescription(vm: Vm): Pick<VmMessage, "name" | "uuid" | "klass" | "qid" | "label" | "template" | "tags" | "createTime" | "updateTime" | "etag"> {
  return {
    createTime: timestampFromDate(vm.createdAt),
    updateTime: timestampFromDate(vm.updatedAt),
    etag: vm.etag,
    name: vm.name,
    uuid: vm.uuid,
    klass: VM_CLASS_OF_NAME[vm.klass],
    qid: vm.qid,
    label: vm.label,
    template: vm.template,
    tags: [...vm.tags],
  };
}

export function runtimeMessage(vm: Vm): VmRuntime | undefined {
  const runtime = vm.runtime;
  if (!runtime) return undefined;
  const addresses = [
    ...(runtime.ip ? [create(VmAddressSchema, { family: AddressFamily.INET, address: runtime.ip })] : []),
    ...(runtime.ip6 ? [create(VmAddressSchema, { family: AddressFamily.INET6, address: runtime.ip6 })] : []),
  ];
  return create(VmRuntimeSchema, {
    startTime: timestampFromDate(runtime.startedAt),
    pid: runtime.pid,
    vsockCid: runtime.vsockCid,
    ipv4: runtime.ip,
    addresses,
    interfaces: runtime.interfaces.map((nic) => create(HostInterfaceSchema, { name: nic.name, mac: nic.mac })),
  });
}
