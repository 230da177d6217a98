import { type Command, Option } from "commander";
import {
  isSiteLogixTable,
  resolveTableNames,
  SUBSCRIPTIONS,
  type SiteLogixTable,
  type StreamStartingPosition,
  withClients,
} from "@sitelogix/core";
import { StreamRunner, type RunnerEvent, type SubscriberName } from "@sitelogix/core/local-esm";
import { CliError, EXIT, say } from "../output.js";
import { tableArg } from "../options.js";
import { onStopSignals } from "../signals.js";

interface StreamOptions {
  table?: string[];
  subscriber?: SubscriberName[];
  from: StreamStartingPosition;
  pollInterval: string;
}

function describeEvent(e: RunnerEvent): string | undefined {
  switch (e.type) {
    case "mapping": {
      const how = e.resumed
        ? `resuming the mapping started ${e.mapping.startedAt}`
        : `new mapping from ${e.mapping.from}`;
      return `${e.subscriber} <- ${e.table}: ${how} (${e.mapping.streamArn})`;
    }
    case "shard": {
      const from = e.after ? `resumes after sequence number ${e.after}` : "starts at its first record";
      return `${e.subscriber} <- ${e.table}: shard ${e.shardId} ${from}`;
    }
    case "shardFinished":
      return `${e.subscriber} <- ${e.table}: shard ${e.shardId} closed and fully processed`;
    case "invocation":
      return e.result === "ok"
        ? undefined
        : `${e.subscriber} <- ${e.table}: batch of ${e.records} failed (${e.result}): ${e.error}`;
    case "sunk": {
      const f = e.failure;
      const records = `records ${f.startSequenceNumber}..${f.endSequenceNumber} (${f.batchSize})`;
      return (
        `${f.subscriber} <- ${f.table}: ON-FAILURE ${f.condition}: shard ${f.shardId} ${records} ` +
        `after ${f.attempts} invocation(s), recorded in the ledger: ${f.error}`
      );
    }
    case "error":
      return `${e.subscriber} <- ${e.table}: ${e.error} (retrying)`;
  }
}

export function registerStream(program: Command): void {
  program
    .command("stream")
    .description(
      "local event-source mapping: poll the tables' streams and run the normalizer and audit-logger handlers with\n" +
        "Lambda's semantics (batches, partial failures, bisect, retries, on-failure sink in the ledger), " +
        "checkpointing\n" +
        "per shard in the ledger, until SIGINT/SIGTERM. The handlers' own logs (JSON, as in CloudWatch) go to stdout.",
    )
    .option("--table <table...>", "tables whose streams to read (logical or physical name; default: all six)")
    .addOption(
      new Option("--subscriber <name...>", "subscribers to run (default: all)").choices(
        SUBSCRIPTIONS.map((s) => s.name),
      ),
    )
    .addOption(
      new Option("--from <position>", "where a new mapping starts; an existing mapping resumes from its checkpoints")
        .choices(["trim-horizon", "latest"])
        .default("trim-horizon"),
    )
    .option("--poll-interval <ms>", "pause between polls of a shard that had no new records", "250")
    .action(async (opts: StreamOptions) => {
      const pollIntervalMs = Number(opts.pollInterval);
      if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 0)
        throw new CliError(
          `--poll-interval must be a whole number of milliseconds, got ${opts.pollInterval}`,
          EXIT.usage,
        );
      const names = resolveTableNames();
      const tables = opts.table?.map((arg): SiteLogixTable => {
        const logical = tableArg(arg, names);
        if (!isSiteLogixTable(logical))
          throw new CliError(`${arg} is a migrator table; it has no stream to follow`, EXIT.usage);
        return logical;
      });
      await withClients(async (clients, ledger) => {
        const runner = new StreamRunner({
          clients,
          names,
          ledger,
          ...(tables ? { tables } : {}),
          ...(opts.subscriber ? { subscribers: opts.subscriber } : {}),
          from: opts.from,
          pollIntervalMs,
          onEvent: (e) => {
            const line = describeEvent(e);
            if (line) say(line);
          },
        });
        // Stopping on a signal is how this command ends: exit 0 once the invocations in flight finish.
        const signals = onStopSignals(
          "stopping after the invocations in flight (records not yet checkpointed come again on the next start)",
          () => runner.stop(),
        );
        try {
          const stats = await runner.run();
          for (const [subscriber, s] of Object.entries(stats)) {
            say(
              `${subscriber}: ${s.recordsDelivered} records delivered in ${s.invocations} invocations ` +
                `(${s.failedInvocations} failed), ${s.recordsSunk} sent to the on-failure sink`,
            );
          }
        } finally {
          signals.dispose();
        }
      }, names);
    });
}
