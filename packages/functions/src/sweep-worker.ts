// Sweep segment worker Lambda: the distributed sweep's state machine (stacks/sweep.ts) invokes it
// with a SegmentTask until it answers `done`. It works one time-boxed slice of its segment with the
// same core worker every sweep mode runs (runSegmentSlice), then returns { done, counts }.
// A thrown error fails the invocation: the state machine records it on the segment and stops it.
import { Logger } from "@aws-lambda-powertools/logger";
import type { Context } from "aws-lambda";
// Narrow entry points, not the core barrel: the bundle carries only what the function uses.
import { createClients } from "@sitelogix/core/clients";
import { Ledger } from "@sitelogix/core/ledger";
import { resolveTableNames } from "@sitelogix/core/names";
import { runSegmentSlice, type SegmentSliceResult, type SegmentTask } from "@sitelogix/core/sweep";
import { sliceMsFor } from "@sitelogix/core/sweep-machine/asl";

const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "sitelogix-sweep-worker" });

type Deps = Parameters<typeof runSegmentSlice>[0];

let environment: { clients: Deps["clients"]; ledger: Ledger; names: ReturnType<typeof resolveTableNames> } | undefined;

/** Clients and names from the SDK's environment and the SST links, once per execution environment. */
function defaultDeps(table: SegmentTask["table"]): Deps {
  if (!environment) {
    const clients = createClients();
    const names = resolveTableNames();
    environment = { clients, names, ledger: new Ledger(clients.doc, names.ledger) };
  }
  return { clients: environment.clients, ledger: environment.ledger, tableName: environment.names[table] };
}

export function createSweepWorkerHandler(options: { deps?: (task: SegmentTask) => Deps } = {}) {
  return async function handler(task: SegmentTask, context: Context): Promise<SegmentSliceResult> {
    const deps = options.deps?.(task) ?? defaultDeps(task.table);
    // The slice from the stack's setting, shortened if the invocation has less time left.
    const sliceMs = sliceMsFor(process.env.SITELOGIX_SWEEP_SLICE_MS, context.getRemainingTimeInMillis());
    const fields = { sweepId: task.sweepId, table: task.table, segment: task.segment, sliceMs };
    logger.info("slice starting", fields);
    // A stop well before Lambda's own timeout, should the slice overrun: in-flight writes finish.
    const signal = AbortSignal.timeout(context.getRemainingTimeInMillis() - 30_000);
    const result = await runSegmentSlice({ ...deps, signal }, { ...task, sliceMs });
    logger.info("slice done", { ...fields, done: result.done, counts: result.counts });
    return result;
  };
}

export const handler = createSweepWorkerHandler();
