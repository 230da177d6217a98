// One subscription on one table's stream, as one event-source mapping: its place in the ledger,
// its shards (parents before children) and a consumer per shard.
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { DescribeStreamCommand, type Shard } from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBRecord } from "aws-lambda";
import type { StreamMapping } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { matchesFilter } from "../subscriptions.js";
import { sleep } from "../sleep.js";
import type { FunctionInvoker } from "./invoker.js";
import {
  DEFAULT_POLL_INTERVAL_MS,
  failureText,
  MAX_BACKOFF_MS,
  type RunnerEvent,
  type StreamRunnerOptions,
  type SubscriberName,
} from "./options.js";
import { ShardConsumer } from "./shard.js";

/** One subscription on one table's stream: discovers shards and runs a consumer per shard, parents first. */
export class MappingRunner {
  streamArn = "";
  private mapping?: StreamMapping;
  private readonly finished = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private wake?: () => void;

  constructor(
    readonly options: StreamRunnerOptions,
    readonly invoker: FunctionInvoker,
    readonly table: SiteLogixTable,
    readonly signal: AbortSignal,
  ) {}

  get subscriber(): SubscriberName {
    return this.invoker.subscription.name;
  }

  get pollIntervalMs(): number {
    return this.options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  }

  emit(event: RunnerEvent): void {
    this.options.onEvent?.(event);
  }

  /** The subscription's filter, and (for a mapping started at `latest`) nothing written before it started. */
  matches(record: DynamoDBRecord, createdMs: number): boolean {
    const filters = this.invoker.subscription.filters;
    if (filters && !filters.some((f) => matchesFilter(f, record))) return false;
    // Creation times are truncated (to the minute locally): keep everything that may be after the start.
    return this.mapping?.from !== "latest" || createdMs >= Date.parse(this.mapping.startedAt) - 60_000;
  }

  /**
   * Runs a ledger write until it succeeds (a lost checkpoint would only mean redelivery, but a lost sink entry a lost
   * batch).
   */
  async persist(write: () => Promise<void>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await write();
        return true;
      } catch (err) {
        if (this.signal.aborted) return false;
        this.emit({
          type: "error",
          subscriber: this.subscriber,
          table: this.table,
          error: `ledger write failed: ${failureText(err)}`,
        });
        await sleep(Math.min(MAX_BACKOFF_MS, this.pollIntervalMs * 2 ** attempt), this.signal);
      }
    }
  }

  async run(): Promise<void> {
    const { clients, ledger, names } = this.options;
    const description = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: names[this.table] }))).Table;
    if (!description?.LatestStreamArn || !description.StreamSpecification?.StreamEnabled) {
      throw new Error(`table ${names[this.table]} has no stream enabled`);
    }
    this.streamArn = description.LatestStreamArn;
    const requested: StreamMapping = {
      subscriber: this.subscriber,
      table: this.table,
      streamArn: this.streamArn,
      from: this.options.from ?? "trim-horizon",
      startedAt: new Date().toISOString(),
    };
    this.mapping = await ledger.ensureStreamMapping(requested);
    const checkpoints = new Map(
      (await ledger.shardCheckpoints(this.subscriber, this.table))
        .filter((c) => c.streamArn === this.streamArn)
        .map((c) => [c.shardId, c]),
    );
    this.emit({
      type: "mapping",
      subscriber: this.subscriber,
      table: this.table,
      mapping: this.mapping,
      resumed: this.mapping.startedAt !== requested.startedAt,
    });
    // Every write from the mapping's start on reaches the normalizer (at least once): the gate may count on it.
    if (this.subscriber === "normalizer") await ledger.markNormalizerLive(this.table, this.mapping.startedAt);
    for (const c of checkpoints.values()) if (c.finished) this.finished.add(c.shardId);

    while (!this.signal.aborted) {
      const shards = await this.describeShards();
      if (shards) {
        const listed = new Set(shards.map((s) => s.ShardId));
        for (const shard of shards) {
          const id = shard.ShardId!;
          if (this.finished.has(id) || this.running.has(id)) continue;
          // A child waits until its parent is read to the end (unless the parent has aged out of the stream).
          const parent = shard.ParentShardId;
          if (parent && listed.has(parent) && !this.finished.has(parent)) continue;
          const consumer = new ShardConsumer(this, shard, checkpoints.get(id));
          this.running.set(
            id,
            consumer.run().then((done) => {
              this.running.delete(id);
              if (done) this.finished.add(id);
              this.wake?.();
            }),
          );
        }
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        void sleep(this.options.discoveryIntervalMs ?? 10_000, this.signal).then(resolve);
      });
    }
    await Promise.all(this.running.values());
  }

  /** Every shard of the stream (DescribeStream pages through them with ExclusiveStartShardId). */
  private async describeShards(): Promise<Shard[] | undefined> {
    const shards: Shard[] = [];
    try {
      let start: string | undefined;
      do {
        const out = await this.options.clients.streams.send(
          new DescribeStreamCommand({ StreamArn: this.streamArn, ...(start ? { ExclusiveStartShardId: start } : {}) }),
          { abortSignal: this.signal },
        );
        shards.push(...(out.StreamDescription?.Shards ?? []));
        start = out.StreamDescription?.LastEvaluatedShardId;
      } while (start);
      return shards;
    } catch (err) {
      if (!this.signal.aborted)
        this.emit({ type: "error", subscriber: this.subscriber, table: this.table, error: failureText(err) });
      return undefined;
    }
  }
}
