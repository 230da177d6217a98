// The trail: appends each stream record's entry to its item's chain exactly once, in stream order;
// queries and verification read it (query.ts, verify.ts). The audit-logger Lambda and the `audit`
// CLI are thin adapters over this class.
import {
  GetItemCommand,
  TransactWriteItemsCommand,
  type CancellationReason,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import type { TableNames } from "../names.js";
import { inItemOrder } from "../streams.js";
import { sleep } from "../sleep.js";
import { headOf, placeEntry, type ChainHead } from "./chain.js";
import type { AuditEntry, EntryContent } from "./entry.js";
import { byActor, byTable, history, type TimeRange } from "./query.js";
import { entryContent, recordEntity } from "./record.js";
import { DEFAULT_RETENTION, type Retention } from "./retention.js";
import {
  entrySk,
  HEAD_SK,
  headItem,
  padSequence,
  parseHead,
  storedEntry,
  type EntryStorage,
  type StoredEntry,
} from "./store.js";
import type { AttributeMap } from "./values.js";
import { verifyTrail, type VerifyOptions, type VerifyReport } from "./verify.js";
import { isErrorNamed } from "../errors.js";

const HEAD_CACHE_SIZE = 10_000;
const APPEND_ATTEMPTS = 8;
/** Items of one batch appended at the same time (each item's records still one after another). */
export const AUDIT_BATCH_CONCURRENCY = 16;

export type AppendOutcome = { outcome: "appended"; position: number; storage: EntryStorage } | { outcome: "duplicate" };

/**
 * A record older than the newest entry of its item that is not in the chain: appending it would
 * misorder the history.
 */
export class OutOfOrderRecordError extends Error {}

export interface AuditTrailOptions {
  retention?: Retention;
  /** Clock (tests): processing time of new entries, and "now" for retention checks in verify. */
  now?: () => Date;
}

const reasonCode = (r: CancellationReason | undefined) => r?.Code ?? "None";

export class AuditTrail {
  private readonly heads = new Map<string, ChainHead>();
  private readonly retention: Retention;
  private readonly now: () => Date;

  constructor(
    readonly dynamodb: DynamoDBClient,
    /** Physical names of all tables: the audit table's, and the source tables' (to name them logically). */
    readonly names: TableNames,
    options: AuditTrailOptions = {},
  ) {
    this.retention = options.retention ?? DEFAULT_RETENTION;
    this.now = options.now ?? (() => new Date());
  }

  get tableName(): string {
    return this.names.audit;
  }

  /**
   * Appends the entry of one stream record exactly once: a record already in the chain (redelivery)
   * is a duplicate; the entry and the head are written in one transaction conditioned on the head
   * still being what it was read as, so concurrent appenders cannot fork a chain.
   */
  async append(content: EntryContent): Promise<AppendOutcome> {
    for (let attempt = 0; ; attempt++) {
      const head = this.heads.get(content.entity) ?? (await this.readHead(content.entity));
      if (head && padSequence(content.sequenceNumber) <= padSequence(head.lastSequenceNumber))
        return this.alreadyRecorded(content);
      const entry = placeEntry(content, head, this.now(), this.retention);
      const stored = storedEntry(entry);
      const newHead = headOf(entry);
      try {
        await this.dynamodb.send(
          new TransactWriteItemsCommand({ TransactItems: this.appendItems(entry, stored, head, newHead) }),
        );
        this.remember(entry.entity, newHead);
        return { outcome: "appended", position: entry.position, storage: stored.storage };
      } catch (err) {
        const reasons = (err as { name?: string; CancellationReasons?: CancellationReason[] }).CancellationReasons;
        if (!isErrorNamed(err, "TransactionCanceledException") || !reasons || attempt >= APPEND_ATTEMPTS) throw err;
        const [entryReason, ...rest] = reasons;
        const headReason = rest[rest.length - 1];
        if (reasonCode(entryReason) === "ConditionalCheckFailed") return this.duplicateOf(content, entryReason?.Item);
        if (reasonCode(headReason) === "ConditionalCheckFailed") {
          // Another appender moved the head: continue from the head DynamoDB returned with the failure.
          const current = parseHead(headReason?.Item);
          if (current) this.remember(content.entity, current);
          else this.heads.delete(content.entity);
        } else {
          // TransactionConflict or throttling: back off and re-read the head.
          this.heads.delete(content.entity);
          await sleep(Math.min(1000, 20 * 2 ** attempt) * Math.random());
        }
      }
    }
  }

  private appendItems(entry: AuditEntry, stored: StoredEntry, head: ChainHead | undefined, newHead: ChainHead) {
    const created = { ConditionExpression: "attribute_not_exists(PK)" };
    return [
      {
        Put: {
          TableName: this.tableName,
          Item: stored.item,
          ...created,
          ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
        },
      },
      ...stored.chunks.map((Item) => ({ Put: { TableName: this.tableName, Item, ...created } })),
      {
        Put: {
          TableName: this.tableName,
          Item: headItem(entry, newHead),
          ...(head
            ? {
                ConditionExpression: "#count = :count AND lastHash = :hash",
                ExpressionAttributeNames: { "#count": "count" },
                ExpressionAttributeValues: { ":count": { N: String(head.count) }, ":hash": { S: head.lastHash } },
              }
            : created),
          ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
        },
      },
    ];
  }

  private remember(entity: string, head: ChainHead): void {
    this.heads.delete(entity);
    this.heads.set(entity, head);
    if (this.heads.size > HEAD_CACHE_SIZE) this.heads.delete(this.heads.keys().next().value!);
  }

  private async readHead(entity: string): Promise<ChainHead | undefined> {
    const out = await this.dynamodb.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { PK: { S: entity }, SK: { S: HEAD_SK } },
        ConsistentRead: true,
      }),
    );
    return parseHead(out.Item);
  }

  /** A record at or before the chain's newest entry: a redelivery if its entry exists, else out of order. */
  private async alreadyRecorded(content: EntryContent): Promise<AppendOutcome> {
    const out = await this.dynamodb.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { PK: { S: content.entity }, SK: { S: entrySk(content.sequenceNumber) } },
        ProjectionExpression: "eventId",
        ConsistentRead: true,
      }),
    );
    if (!out.Item) {
      throw new OutOfOrderRecordError(
        `record ${content.sequenceNumber} of ${content.entity} arrived after a newer record of the same item ` +
          "was audited; not appended",
      );
    }
    return this.duplicateOf(content, out.Item);
  }

  private duplicateOf(content: EntryContent, existing: AttributeMap | undefined): AppendOutcome {
    const eventId = existing?.eventId?.S;
    if (eventId !== undefined && eventId !== content.eventId) {
      throw new Error(
        `audit entry for sequence number ${content.sequenceNumber} of ${content.entity} belongs to event ` +
          `${eventId}, not ${content.eventId}`,
      );
    }
    return { outcome: "duplicate" };
  }

  /**
   * The processor of one batch. Records of different items are appended concurrently (at most
   * `concurrency` at a time); records of one item strictly one after another in the batch's (stream)
   * order, and once one fails its item's later records fail too: Lambda redelivers from the earliest
   * failure, so an item's history is never appended out of order. The order comes from the batch
   * itself, not from the order in which the returned function is called.
   */
  batch(
    records: readonly DynamoDBRecord[],
    options: { concurrency?: number } = {},
  ): (record: DynamoDBRecord) => Promise<AppendOutcome> {
    return inItemOrder(
      records,
      (record) => recordEntity(record, this.names),
      async (record) => this.append(entryContent(record, this.names)),
      options.concurrency ?? AUDIT_BATCH_CONCURRENCY,
    );
  }

  /** Every entry of one item, in stream order. */
  history(table: string, keys: Record<string, string>, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
    return history(this, table, keys, range);
  }

  /** Entries of one actor (e.g. `user_42`, `sitelogix-migrate:sweep`, `dynamodb.amazonaws.com`), oldest first. */
  byActor(actor: string, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
    return byActor(this, actor, range);
  }

  /** Entries of one table (logical name), oldest first. */
  byTable(table: string, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
    return byTable(this, table, range);
  }

  /** Checks every chain (of one table, or all); see verify.ts. */
  verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    return verifyTrail(this, this.now, options);
  }
}
