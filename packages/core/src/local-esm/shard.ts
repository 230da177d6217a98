// One shard of one mapping: reads it in order, batches its records, delivers them with Lambda's
// retry, bisect, age and on-failure semantics, and checkpoints in the ledger as it goes.
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBRecord } from "aws-lambda";
import type { ShardCheckpoint, StreamFailure, StreamFailureCondition } from "../ledger/index.js";
import { compareSequenceNumbers } from "../streams.js";
import { sleep } from "../sleep.js";
import type { MappingRunner } from "./mapping.js";
import { failureText, MAX_BACKOFF_MS, SUNK_RECORDS_LISTED } from "./options.js";
import { GET_RECORDS_LIMIT, keysOf, toLambdaRecord } from "./records.js";
import { errorName } from "../errors.js";

interface Pending {
  record: DynamoDBRecord;
  seq: string;
  matches: boolean;
  fetchedAt: number;
}

/** Reads one shard and delivers its records, checkpointing in the ledger as it goes. */
export class ShardConsumer {
  private buffer: Pending[] = [];
  /** undefined: not yet positioned; null: the shard is closed and read to its end. */
  private iterator: string | null | undefined;
  private checkpoint: string | undefined;
  private nextPollAt = 0;
  private readErrors = 0;

  constructor(
    private readonly mapping: MappingRunner,
    private readonly shard: Shard,
    checkpoint: ShardCheckpoint | undefined,
  ) {
    this.checkpoint = checkpoint?.sequenceNumber;
  }

  private get shardId() {
    return this.shard.ShardId!;
  }

  private get settings() {
    return this.mapping.invoker.subscription;
  }

  async run(): Promise<boolean> {
    const m = this.mapping;
    m.emit({
      type: "shard",
      subscriber: m.subscriber,
      table: m.table,
      shardId: this.shardId,
      ...(this.checkpoint ? { after: this.checkpoint } : {}),
    });
    while (!m.signal.aborted) {
      if (this.iterator === undefined) {
        await this.position();
        continue;
      }
      await this.skipHead();
      const matching = this.buffer.filter((p) => p.matches);
      const now = Date.now();
      // A batch goes when it is full, when the window since its first record is over, or at the shard's end.
      const windowEnds =
        matching.length > 0 ? matching[0]!.fetchedAt + this.settings.maximumBatchingWindowInSeconds * 1000 : Infinity;
      if (
        matching.length > 0 &&
        (matching.length >= this.settings.batchSize || this.iterator === null || now >= windowEnds)
      ) {
        await this.deliver(matching.slice(0, this.settings.batchSize));
        continue;
      }
      if (this.iterator !== null && now >= this.nextPollAt) {
        await this.poll();
        continue;
      }
      if (this.iterator === null && this.buffer.length === 0) {
        await this.save(true);
        m.emit({ type: "shardFinished", subscriber: m.subscriber, table: m.table, shardId: this.shardId });
        return true;
      }
      await sleep(Math.min(this.iterator === null ? Infinity : this.nextPollAt, windowEnds) - now, m.signal);
    }
    return false;
  }

  private async position(): Promise<void> {
    try {
      const out = await this.mapping.options.clients.streams.send(
        new GetShardIteratorCommand({
          StreamArn: this.mapping.streamArn,
          ShardId: this.shardId,
          ...(this.resumeAfter()
            ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: this.resumeAfter() }
            : { ShardIteratorType: "TRIM_HORIZON" }),
        }),
        { abortSignal: this.mapping.signal },
      );
      this.iterator = out.ShardIterator ?? null;
    } catch (err) {
      if (errorName(err) === "TrimmedDataAccessException") {
        // The checkpoint is older than the stream's retention: what lay between is gone. Say so, then go on.
        await this.sink(
          [],
          "RecordsTrimmed",
          0,
          `records after ${this.resumeAfter()} were trimmed from the stream before they were read`,
        );
        this.buffer = [];
        this.checkpoint = undefined;
        return;
      }
      await this.readFailed(err);
    }
  }

  /** Where to continue reading: after the last record held (delivered or buffered). */
  private resumeAfter(): string | undefined {
    return this.buffer.at(-1)?.seq ?? this.checkpoint;
  }

  private async poll(): Promise<void> {
    const m = this.mapping;
    let out: GetRecordsCommandOutput;
    try {
      out = await m.options.clients.streams.send(
        new GetRecordsCommand({ ShardIterator: this.iterator!, Limit: GET_RECORDS_LIMIT }),
        { abortSignal: m.signal },
      );
    } catch (err) {
      if (errorName(err) === "ExpiredIteratorException") this.iterator = undefined;
      else if (errorName(err) === "TrimmedDataAccessException") this.iterator = undefined;
      else await this.readFailed(err);
      return;
    }
    this.readErrors = 0;
    const now = Date.now();
    const records = out.Records ?? [];
    for (const r of records) {
      const record = toLambdaRecord(r, m.streamArn);
      const created = (record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000;
      this.buffer.push({
        record,
        seq: record.dynamodb!.SequenceNumber!,
        matches: m.matches(record, created),
        fetchedAt: now,
      });
    }
    this.iterator = out.NextShardIterator ?? null;
    // Lambda polls a shard 4 times a second; a full page means a backlog, so read on at once.
    this.nextPollAt = records.length >= GET_RECORDS_LIMIT ? now : now + m.pollIntervalMs;
  }

  private async readFailed(err: unknown): Promise<void> {
    if (this.mapping.signal.aborted) return;
    this.readErrors++;
    this.mapping.emit({
      type: "error",
      subscriber: this.mapping.subscriber,
      table: this.mapping.table,
      shardId: this.shardId,
      error: failureText(err),
    });
    await sleep(Math.min(MAX_BACKOFF_MS, this.mapping.pollIntervalMs * 2 ** this.readErrors), this.mapping.signal);
  }

  /** Records at the head that the filter discards are done: the checkpoint moves past them. */
  private async skipHead(): Promise<void> {
    let last: string | undefined;
    while (this.buffer[0] && !this.buffer[0].matches) last = this.buffer.shift()!.seq;
    if (last) await this.commit(last);
  }

  private async deliver(batch: Pending[]): Promise<void> {
    const m = this.mapping;
    const s = this.settings;
    // Segments still to deliver, in order; bisecting replaces one by its two halves.
    const segments: { records: Pending[]; retries: number }[] = [{ records: batch, retries: 0 }];
    while (segments.length > 0 && !m.signal.aborted) {
      const segment = segments[0]!;
      const maxAgeMs = s.maximumRecordAgeInSeconds * 1000;
      const aged =
        maxAgeMs >= 0
          ? segment.records.filter(
              (p) => Date.now() - (p.record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000 > maxAgeMs,
            )
          : [];
      if (aged.length > 0) {
        // Records are in write order, so the aged ones lead the segment.
        await this.sink(
          aged,
          "RecordAgeExceeded",
          segment.retries,
          `older than maximumRecordAgeInSeconds (${s.maximumRecordAgeInSeconds})`,
        );
        segment.records = segment.records.slice(aged.length);
        if (segment.records.length === 0) {
          segments.shift();
          continue;
        }
      }
      const result = await m.invoker.invoke(
        segment.records.map((p) => p.record),
        m.streamArn,
      );
      m.emit({
        type: "invocation",
        subscriber: m.subscriber,
        table: m.table,
        shardId: this.shardId,
        records: segment.records.length,
        result: result.kind,
        ...(result.kind === "ok" ? {} : { error: result.error }),
      });
      if (result.kind === "ok") {
        segments.shift();
        await this.commit(segment.records.at(-1)!.seq);
        continue;
      }
      if (result.kind === "partial") {
        // Checkpoint before the lowest failed record; retry from it (later records come again).
        if (result.failedIndex > 0) await this.commit(segment.records[result.failedIndex - 1]!.seq);
        segment.records = segment.records.slice(result.failedIndex);
        segment.retries++;
      } else if (s.bisectBatchOnFunctionError && segment.records.length > 1) {
        const half = Math.ceil(segment.records.length / 2);
        segments.splice(
          0,
          1,
          { records: segment.records.slice(0, half), retries: segment.retries },
          { records: segment.records.slice(half), retries: segment.retries },
        );
        continue;
      } else {
        segment.retries++;
      }
      if (s.maximumRetryAttempts >= 0 && segment.retries > s.maximumRetryAttempts) {
        await this.sink(segment.records, "RetryAttemptsExhausted", segment.retries, result.error);
        segments.shift();
        continue;
      }
      await sleep(Math.min(MAX_BACKOFF_MS, m.pollIntervalMs * 2 ** (segment.retries - 1)), m.signal);
    }
  }

  /**
   * Sends records to the on-failure sink (the ledger), then moves the checkpoint past them; `attempts`: invocations
   * made.
   */
  private async sink(
    records: Pending[],
    condition: StreamFailureCondition,
    attempts: number,
    error: string,
  ): Promise<void> {
    const m = this.mapping;
    const first = records[0]?.seq ?? this.checkpoint ?? "0";
    const last = records.at(-1)?.seq ?? first;
    const failure: StreamFailure = {
      subscriber: m.subscriber,
      table: m.table,
      streamArn: m.streamArn,
      shardId: this.shardId,
      condition,
      startSequenceNumber: first,
      endSequenceNumber: last,
      batchSize: records.length,
      attempts,
      error,
      records: records.slice(0, SUNK_RECORDS_LISTED).map((p) => ({
        sequenceNumber: p.seq,
        eventId: p.record.eventID ?? "",
        eventName: p.record.eventName ?? "",
        keys: keysOf(p.record),
      })),
      at: new Date().toISOString(),
    };
    if (!(await m.persist(() => m.options.ledger.recordStreamFailure(failure)))) return;
    m.invoker.stats.recordsSunk += records.length;
    m.emit({ type: "sunk", failure });
    if (records.length > 0) await this.commit(last);
  }

  /** Everything up to `seq` is done: drop it from the buffer and record the checkpoint. */
  private async commit(seq: string): Promise<void> {
    while (this.buffer[0] && compareSequenceNumbers(this.buffer[0].seq, seq) <= 0) this.buffer.shift();
    this.checkpoint = seq;
    await this.save(false);
  }

  private async save(finished: boolean): Promise<void> {
    const m = this.mapping;
    const checkpoint: ShardCheckpoint = {
      subscriber: m.subscriber,
      table: m.table,
      streamArn: m.streamArn,
      shardId: this.shardId,
      ...(this.shard.ParentShardId ? { parentShardId: this.shard.ParentShardId } : {}),
      ...(this.checkpoint ? { sequenceNumber: this.checkpoint } : {}),
      finished,
      updatedAt: new Date().toISOString(),
    };
    await m.persist(() => m.options.ledger.saveShardCheckpoint(checkpoint));
  }
}
