// The local event-source mapping (`sitelogix-migrate stream`, local mode, tests): one mapping per
// (subscription, table), as the stacks declare them, each with its own checkpoints in the ledger.
// Reproduced from Lambda's documented behaviour for DynamoDB streams: shards in order and parents
// before children; batches up to batchSize within a batching window; event-name filters; partial
// batch responses (checkpoint before the lowest failed record, retry from there); bisect on
// function error (not counted as a retry); maximumRetryAttempts and maximumRecordAgeInSeconds,
// after which the batch goes to the on-failure sink and the shard moves on.
import { setMaxListeners } from "node:events";
import { SITELOGIX_TABLES } from "../schema.js";
import { SUBSCRIPTIONS } from "../subscriptions.js";
import { FunctionInvoker, loadHandler } from "./invoker.js";
import { MappingRunner } from "./mapping.js";
import {
  DEFAULT_FUNCTION_TIMEOUT_MS,
  type StreamRunnerOptions,
  type SubscriberName,
  type SubscriberStats,
} from "./options.js";

/**
 * The local event-source mapping. `run()` reads until `stop()` (or the signal), lets the invocations in
 * flight finish and their checkpoints land, and resolves with per-subscriber counts.
 */
export class StreamRunner {
  private readonly controller = new AbortController();
  private readonly invokers: FunctionInvoker[] = [];
  private readonly mappings: MappingRunner[] = [];

  constructor(options: StreamRunnerOptions) {
    // Every mapping's poll and invocation listens to it.
    setMaxListeners(0, this.controller.signal);
    const wanted = options.subscribers;
    const tables = options.tables ?? SITELOGIX_TABLES;
    for (const subscription of (options.subscriptions ?? SUBSCRIPTIONS).filter(
      (s) => !wanted || wanted.includes(s.name),
    )) {
      for (const table of tables.filter((t) => subscription.tables.includes(t))) {
        const injected = options.handlers?.[subscription.name];
        const invoker = new FunctionInvoker(
          subscription,
          injected ? async () => injected : () => loadHandler(subscription.handler, table),
          options.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS,
        );
        this.invokers.push(invoker);
        this.mappings.push(new MappingRunner(options, invoker, table, this.controller.signal));
      }
    }
  }

  /** Counts per subscriber, over all its mappings. */
  get stats(): Partial<Record<SubscriberName, SubscriberStats>> {
    const stats: Partial<Record<SubscriberName, SubscriberStats>> = {};
    for (const { subscription, stats: s } of this.invokers) {
      const total = (stats[subscription.name] ??= {
        invocations: 0,
        recordsDelivered: 0,
        failedInvocations: 0,
        recordsSunk: 0,
      });
      for (const k of Object.keys(total) as (keyof SubscriberStats)[]) total[k] += s[k];
    }
    return stats;
  }

  stop(): void {
    this.controller.abort();
  }

  async run(): Promise<Partial<Record<SubscriberName, SubscriberStats>>> {
    await Promise.all(this.invokers.map((i) => i.load()));
    const mappings = this.mappings;
    const results = await Promise.allSettled(
      mappings.map((m) =>
        m.run().catch((err: unknown) => {
          // A mapping that cannot start (no stream, no table) stops the others: the operator must see it.
          this.stop();
          throw err;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return this.stats;
  }
}
