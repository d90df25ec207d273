/**
 * Console sessions on running VMs' serial consoles, as Qubes' qvm-console-dispvm or virsh
 * console: several may read one console at once, and one of them at a time may type into it
 * (the first to type takes it, until its session ends); another that types meanwhile is refused
 * (CONSOLE_BUSY), with the session that holds it named, rather than interleaving keystrokes.
 */
import type { ConsoleStream } from "../../ports/hypervisor";
import type { CallContext } from "../shared/call-context";
import type { VmLookup } from "../vms/vm-lookup";
import { consoleBusy } from "./lifecycle-errors";
import type { RunningVms } from "./running-vms";

/** One caller's session on a console: the guest's output, and typing into it. */
export interface ConsoleSession {
  readonly output: AsyncIterable<Uint8Array>;
  /** Types `bytes`; CONSOLE_BUSY while another session types into this console. */
  write(bytes: Uint8Array): Promise<void>;
  close(): void;
}

/** Who holds a console's input. */
interface Writer {
  session: object;
  caller: string;
  requestId: string;
}

export class VmConsoles {
  /** The session that types into each VM's console, by uuid. */
  private readonly writers = new Map<string, Writer>();

  constructor(
    private readonly lookup: VmLookup,
    private readonly running: RunningVms,
  ) {}

  /** Joins the console of a running VM; the session ends when `ctx` aborts, when it is closed, or when the VM halts. */
  async open(text: string, ctx: CallContext): Promise<ConsoleSession> {
    const vm = this.lookup.resolve(text);
    const stream = await this.running.capability(vm, "console").open(ctx.signal);
    const session = {};
    const writer: Writer = { session, caller: ctx.caller, requestId: ctx.requestId };
    const letGo = (): void => {
      if (this.writers.get(vm.uuid)?.session === session) this.writers.delete(vm.uuid);
    };
    ctx.signal.addEventListener("abort", letGo, { once: true });
    return {
      output: releasingAtEnd(stream, letGo),
      write: (bytes) => {
        const holder = this.writers.get(vm.uuid);
        if (holder && holder.session !== session) return Promise.reject(consoleBusy(vm, holder.caller, holder.requestId));
        this.writers.set(vm.uuid, writer);
        return stream.write(bytes);
      },
      close: () => {
        letGo();
        stream.close();
      },
    };
  }
}

/** The stream's output, letting go of the console's input when it ends (the VM halted, or the session closed). */
async function* releasingAtEnd(stream: ConsoleStream, letGo: () => void): AsyncIterable<Uint8Array> {
  try {
    yield* stream.output;
  } finally {
    letGo();
  }
}
