import type { FirewallService } from "../../../gen/steward/v1/firewall_service_pb";
import type { ServiceImpl } from "../../server/service-impl";
import { notYetImplemented } from "../not-implemented";

/** FirewallService: the contract is complete; the behaviour comes with a later issue. */
export function firewallApi(): ServiceImpl<typeof FirewallService> {
  return {
    getFirewall: notYetImplemented,
    setFirewall: notYetImplemented,
    insertRule: notYetImplemented,
    removeRule: notYetImplemented,
    flushFirewall: notYetImplemented,
    getFirewallPolicy: notYetImplemented,
    setFirewallPolicy: notYetImplemented,
    reloadFirewall: notYetImplemented,
  };
}
