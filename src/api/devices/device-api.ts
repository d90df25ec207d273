import type { DeviceService } from "../../../gen/steward/v1/device_service_pb";
import type { ServiceImpl } from "../../server/service-impl";
import { notYetImplemented } from "../not-implemented";

/** DeviceService: the contract is complete; the behaviour comes with a later issue. */
export function deviceApi(): ServiceImpl<typeof DeviceService> {
  return {
    listDeviceClasses: notYetImplemented,
    listAvailableDevices: notYetImplemented,
    listAttachedDevices: notYetImplemented,
    listAssignedDevices: notYetImplemented,
    attachDevice: notYetImplemented,
    detachDevice: notYetImplemented,
    assignDevice: notYetImplemented,
    unassignDevice: notYetImplemented,
    setAssignmentMode: notYetImplemented,
    listDeniedDevices: notYetImplemented,
    denyDevice: notYetImplemented,
    allowDevice: notYetImplemented,
  };
}
