import ipaddr from "ipaddr.js";
import type { VmRecord } from "../../model/vm-record";

/** The properties that hold a VM's addresses. */
export type AddressKind = "ip" | "ip6" | "mac";

/**
 * The addresses a VM gets from its qid unless it sets its own, as Qubes makes them: an IPv4
 * address in 10.137.0.0/16, an IPv6 one in fd09:24ef:4179::a89:0/112, and a MAC address in
 * 00:16:3e:5e:00:00/32.
 */
export function addressesOfQid(qid: number): Record<AddressKind, string> {
  return {
    ip: `10.137.${(qid >> 8) & 0xff}.${qid & 0xff}`,
    ip6: `fd09:24ef:4179::a89:${qid.toString(16)}`,
    mac: `00:16:3e:5e:${hex((qid >> 8) & 0xff)}:${hex(qid & 0xff)}`,
  };
}

/**
 * The addresses a VM has unless it sets its own: a DispVM's IP addresses come from its dispid,
 * in Qubes' DispVM ranges (10.138.0.0/16, fd09:24ef:4179::a8a:0/112); others' from the qid.
 */
export function defaultAddresses(record: VmRecord): Record<AddressKind, string> {
  const byQid = addressesOfQid(record.qid);
  const dispid = record.klass === "DispVM" ? record.properties.dispid : undefined;
  return dispid === undefined ? byQid : { ...addressesOfDispid(Number(dispid)), mac: byQid.mac };
}

/** The IP addresses a DispVM's dispid gives it. */
export function addressesOfDispid(dispid: number): Omit<Record<AddressKind, string>, "mac"> {
  return { ip: `10.138.${(dispid >> 8) & 0xff}.${dispid & 0xff}`, ip6: `fd09:24ef:4179::a8a:${dispid.toString(16)}` };
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** An address as Steward keeps it: a MAC in lower case, IPv6 in RFC 5952 form, IPv4 as given. */
export function normalisedAddress(kind: AddressKind, value: string): string {
  if (kind === "mac") return value.toLowerCase();
  if (kind === "ip6" && ipaddr.IPv6.isValid(value) && !value.includes("%")) return ipaddr.IPv6.parse(value).toString();
  return value;
}

/**
 * Whether a value is an address a VM may have: a unicast one. 0.0.0.0, broadcast, multicast,
 * loopback and reserved addresses are not; nor a multicast or all-zero MAC.
 */
export function isUnicastAddress(kind: AddressKind, value: string): boolean {
  if (kind === "mac") return MAC.test(value) && (Number.parseInt(value.slice(0, 2), 16) & 1) === 0 && value !== "00:00:00:00:00:00";
  if (kind === "ip") return ipaddr.IPv4.isValidFourPartDecimal(value) && !NOT_UNICAST_V4.has(ipaddr.IPv4.parse(value).range());
  return ipaddr.IPv6.isValid(value) && !value.includes("%") && !NOT_UNICAST_V6.has(ipaddr.IPv6.parse(value).range());
}

const NOT_UNICAST_V4 = new Set(["unspecified", "broadcast", "multicast", "loopback", "reserved"]);
const NOT_UNICAST_V6 = new Set(["unspecified", "multicast", "loopback", "reserved"]);
