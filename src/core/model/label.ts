/** A label: the colour that marks a VM's windows (Qubes' labels). */
export interface LabelRecord {
  name: string;
  /** 0xRRGGBB. */
  color: number;
  index: number;
  builtin: boolean;
}
