/** The VM classes, with Qubes' names and rules. */

export type VmClassName = "AdminVM" | "TemplateVM" | "AppVM" | "StandaloneVM" | "DispVM";

export interface VmClassSpec {
  name: VmClassName;
  description: string;
  /** The class a VM of this class must have as template; undefined when it has none. */
  templateClass: VmClassName | undefined;
  /** Whether CreateVm makes VMs of this class (DispVMs come from CreateDisposableVm). */
  creatable: boolean;
  startable: boolean;
}

export const VM_CLASSES: readonly VmClassSpec[] = [
  {
    name: "AdminVM",
    description: "The host itself, named dom0: always present, never started, stopped or removed.",
    templateClass: undefined,
    creatable: false,
    startable: false,
  },
  {
    name: "TemplateVM",
    description: "A VM whose root volume AppVMs run from; its own changes persist.",
    templateClass: undefined,
    creatable: true,
    startable: true,
  },
  {
    name: "AppVM",
    description: "A VM that runs from a TemplateVM's root volume and keeps only its private volume.",
    templateClass: "TemplateVM",
    creatable: true,
    startable: true,
  },
  {
    name: "StandaloneVM",
    description: "A VM with volumes of its own, not based on a template.",
    templateClass: undefined,
    creatable: true,
    startable: true,
  },
  {
    name: "DispVM",
    description: "A disposable VM made from an AppVM with template_for_dispvms; removed when it halts.",
    templateClass: "AppVM",
    creatable: false,
    startable: true,
  },
];
