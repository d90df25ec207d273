/**
 * The VM classes, with Qubes' names and rules. Every rule that differs by class is a field of
 * this table, read where it applies, rather than a test of the class's name at that place.
 */

export type VmClassName = "AdminVM" | "TemplateVM" | "AppVM" | "StandaloneVM" | "DispVM";

export interface VmClassSpec {
  name: VmClassName;
  description: string;
  /** The class a VM of this class must have as template; undefined when it has none. */
  templateClass: VmClassName | undefined;
  /** Whether CreateVm makes VMs of this class (DispVMs come from CreateDisposableVm). */
  creatable: boolean;
  /** Whether it is started, stopped, paused…: false for the host itself. */
  startable: boolean;
  /**
   * Whether it is the host itself (dom0): always running, and without a netvm or addresses of
   * its own; no VM can use it as netvm.
   */
  isHost: boolean;
  clonable: boolean;
  removable: boolean;
  renamable: boolean;
  /** Whether it takes the global default_netvm when it sets none (TemplateVMs have no network). */
  takesDefaultNetvm: boolean;
  /** Whether VMs of other classes run from the root volume of a VM of this class (a template). */
  isTemplate: boolean;
  /** Whether DispVMs may be based on a VM of this class (one with template_for_dispvms). */
  dispvmBase: boolean;
  /** Whether it is made by CreateDisposableVm, and may be removed when it halts (auto_cleanup). */
  disposable: boolean;
}

export const VM_CLASSES: readonly VmClassSpec[] = [
  {
    name: "AdminVM",
    description: "The host itself, named dom0: always present, never started, stopped or removed.",
    templateClass: undefined,
    creatable: false,
    startable: false,
    isHost: true,
    clonable: false,
    removable: false,
    renamable: false,
    takesDefaultNetvm: false,
    isTemplate: false,
    dispvmBase: false,
    disposable: false,
  },
  {
    name: "TemplateVM",
    description: "A VM whose root volume AppVMs run from; its own changes persist.",
    templateClass: undefined,
    creatable: true,
    startable: true,
    isHost: false,
    clonable: true,
    removable: true,
    renamable: true,
    takesDefaultNetvm: false,
    isTemplate: true,
    dispvmBase: false,
    disposable: false,
  },
  {
    name: "AppVM",
    description: "A VM that runs from a TemplateVM's root volume and keeps only its private volume.",
    templateClass: "TemplateVM",
    creatable: true,
    startable: true,
    isHost: false,
    clonable: true,
    removable: true,
    renamable: true,
    takesDefaultNetvm: true,
    isTemplate: false,
    dispvmBase: true,
    disposable: false,
  },
  {
    name: "StandaloneVM",
    description: "A VM with volumes of its own, not based on a template.",
    templateClass: undefined,
    creatable: true,
    startable: true,
    isHost: false,
    clonable: true,
    removable: true,
    renamable: true,
    takesDefaultNetvm: true,
    isTemplate: false,
    dispvmBase: false,
    disposable: false,
  },
  {
    name: "DispVM",
    description: "A disposable VM made from an AppVM with template_for_dispvms; removed when it halts.",
    templateClass: "AppVM",
    creatable: false,
    startable: true,
    isHost: false,
    clonable: false,
    removable: true,
    renamable: true,
    takesDefaultNetvm: true,
    isTemplate: false,
    dispvmBase: false,
    disposable: true,
  },
];

const BY_NAME = new Map(VM_CLASSES.map((spec) => [spec.name, spec]));

/** The rules of a class. */
export function vmClass(name: VmClassName): VmClassSpec {
  return BY_NAME.get(name)!;
}
