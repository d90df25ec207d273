import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { VmStatsSchema, type VmStats } from "../../../gen/steward/v1/vm_pb";
import type { VmStatsView } from "../../core/lifecycle/vm-stats";
import { powerStateMessage } from "./vm-messages";

const NS_PER_SECOND = 1_000_000_000;

/** A sample as VmStats: bytes of memory as KiB, and the volumes' I/O summed as well as each. */
export function statsMessage(view: VmStatsView): VmStats {
  const sum = (count: (disk: VmStatsView["disks"][number]) => number): bigint => BigInt(view.disks.reduce((total, disk) => total + count(disk), 0));
  const cpuNs = Math.max(0, Math.round(view.cpuTimeNs));
  return create(VmStatsSchema, {
    vm: view.vm,
    time: timestampFromDate(view.time),
    state: powerStateMessage(view.state),
    cpuTime: { seconds: BigInt(Math.floor(cpuNs / NS_PER_SECOND)), nanos: cpuNs % NS_PER_SECOND },
    cpuUsagePercent: view.cpuUsagePercent,
    memoryKib: kib(view.memoryBytes),
    maxMemoryKib: kib(view.maxMemoryBytes),
    rssKib: kib(view.rssBytes),
    blockReadBytes: sum((disk) => disk.readBytes),
    blockWriteBytes: sum((disk) => disk.writeBytes),
    blockReadOps: sum((disk) => disk.readOps),
    blockWriteOps: sum((disk) => disk.writeOps),
    volumes: view.disks.map((disk) => ({
      volume: disk.name,
      readBytes: BigInt(disk.readBytes),
      writeBytes: BigInt(disk.writeBytes),
      readOps: BigInt(disk.readOps),
      writeOps: BigInt(disk.writeOps),
    })),
    interfaces: view.interfaces.map((nic) => ({
      hostInterface: nic.name,
      rxBytes: BigInt(nic.rxBytes),
      txBytes: BigInt(nic.txBytes),
      rxPackets: BigInt(nic.rxPackets),
      txPackets: BigInt(nic.txPackets),
    })),
  });
}

function kib(bytes: number): bigint {
  return BigInt(Math.floor(bytes / 1024));
}
