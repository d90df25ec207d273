import type { CreateVmRequest, VmVolumeSource } from "../../../gen/steward/v1/vm_service_pb";
import { InvalidFieldError } from "../../core/errors";
import type { NewVm } from "../../core/vms/vm-creation";
import type { NewVolumeContent } from "../../core/vms/vm-participant";
import { volumeFormatName } from "../storage/volume-messages";
import { initialValues } from "./property-messages";
import { vmClassName } from "./vm-messages";

/** A CreateVmRequest in the core's terms; `prefix` names where it sits in the request (ImportVolume's header.new_template.). */
export function newVmOf(request: CreateVmRequest, prefix = ""): NewVm {
  return {
    name: request.name,
    klass: vmClassName(request.klass, `${prefix}klass`),
    label: request.label,
    template: request.template,
    properties: initialValues(request.properties),
    pool: request.pool,
    volumePools: request.volumePools,
    uuid: request.uuid,
    volumes: Object.fromEntries(Object.entries(request.volumes).map(([name, source]) => [name, volumeContentOf(source, `${prefix}volumes[${name}]`)])),
  };
}

function volumeContentOf(message: VmVolumeSource, field: string): NewVolumeContent {
  const { source } = message;
  switch (source.case) {
    case "existing": {
      const { pool, vid, vm, name } = source.value;
      if (vm !== "" || name !== "") throw new InvalidFieldError(`${field}.existing`, "names a pool's volume by pool and vid: a VM's own volume is not taken by another");
      if (pool === "") throw new InvalidFieldError(`${field}.existing.pool`, "is required");
      if (vid === "") throw new InvalidFieldError(`${field}.existing.vid`, "is required");
      return { kind: "existing", pool, vid };
    }
    case "image":
      if (source.value.file === "") throw new InvalidFieldError(`${field}.image.file`, "is required: an image's file name in Steward's images folder");
      return { kind: "image", file: source.value.file, format: volumeFormatName(source.value.format, `${field}.image.format`), sha256: source.value.sha256 };
    default:
      throw new InvalidFieldError(field, "is required: existing or image");
  }
}
