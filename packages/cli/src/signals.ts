// One signal policy for every long-running command: the first SIGINT or SIGTERM asks for a graceful
// stop (work in flight finishes, checkpoints are saved); a second one exits at once. A command
// stopped by a signal exits 128 + the signal's number (130, 143), unless stopping on a signal is its
// normal end (`stream`), which exits 0.
import { constants } from "node:os";
import { say } from "./output.js";

export const signalExitCode = (signal: NodeJS.Signals): number => 128 + constants.signals[signal];

export interface StopSignals {
  /** The first signal received, if any. */
  readonly received: NodeJS.Signals | undefined;
  /** Stops listening. */
  dispose(): void;
}

/** Calls `stop` on the first SIGINT/SIGTERM after saying `what` happens; a second signal exits at once. */
export function onStopSignals(what: string, stop: (signal: NodeJS.Signals) => void): StopSignals {
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) process.exit(signalExitCode(signal));
    received = signal;
    say(`${signal}: ${what} (again to exit at once)`);
    stop(signal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    get received() {
      return received;
    },
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
