import { addressesOf, osReleaseOf } from "../../../../../src/adapters/hypervisor/qemu/qemu-guest";

describe("the guest agent's answers, as facts", () => {
  it("takes the addresses of guest-network-get-interfaces, leaving loopback out", () => {
    const answer = [
      { name: "lo", "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "127.0.0.1", prefix: 8 }, { "ip-address-type": "ipv6", "ip-address": "::1", prefix: 128 }] },
      {
        name: "eth0",
        "hardware-address": "00:16:3e:5e:6c:00",
        "ip-addresses": [
          { "ip-address-type": "ipv4", "ip-address": "10.137.0.5", prefix: 32 },
          { "ip-address-type": "ipv6", "ip-address": "fd09:24ef:4179::a89:5", prefix: 128 },
        ],
      },
      { name: "eth1" },
    ];
    expect(addressesOf(answer)).toEqual([
      { family: "inet", address: "10.137.0.5" },
      { family: "inet6", address: "fd09:24ef:4179::a89:5" },
    ]);
    expect(addressesOf({ unexpected: true })).toEqual([]);
  });

  it("names guest-get-osinfo's fields by their os-release keys, leaving out those the guest does not have", () => {
    const answer = { id: "debian", name: "Debian GNU/Linux", "pretty-name": "Debian GNU/Linux 12 (bookworm)", "version-id": "12", version: "12 (bookworm)", "kernel-release": "6.1.0", machine: "x86_64", variant: "" };
    expect(osReleaseOf(answer)).toEqual({ ID: "debian", NAME: "Debian GNU/Linux", PRETTY_NAME: "Debian GNU/Linux 12 (bookworm)", VERSION_ID: "12", VERSION: "12 (bookworm)" });
  });
});
