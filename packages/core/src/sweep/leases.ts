// A sweep run's records in the ledger as workers use them: the run and its segments created up
// front (startSweepRun), a segment claimed with a lease (a conditional write: a second claimant is
// refused, an expired lease, or one of a dead process on this host, is taken over), its checkpoint
// written only while the lease is held, and the run's shared budget (the SWEEPCTL# record).
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { isErrorNamed } from "../errors.js";
import {
  emptySweepCounts,
  type Ledger,
  ledgerKeys,
  type SweepCheckpoint,
  type SweepControl,
  type SweepCounts,
  type SweepOwner,
  type SweepRun,
} from "../ledger/index.js";
import type { LogicalTable, SiteLogixTable } from "../schema.js";
import { isProcessAlive, SWEEP_DEFAULTS } from "./plan.js";

/** A worker's name in leases: host, pid and a nonce (a pid is reused; the nonce is not). */
export function workerId(): string {
  return `${hostname()}#${process.pid}#${randomBytes(3).toString("hex")}`;
}

/** A holder on this host whose process is gone: its lease need not expire first. */
export function isDeadLocalHolder(holder: string | undefined): boolean {
  if (!holder) return false;
  const [host, pid] = holder.split("#");
  return host === hostname() && Number(pid) !== process.pid && !isProcessAlive(Number(pid));
}

/**
 * Creates a sweep run: its SWEEP# record, one SWEEPSEG# record per segment (not done, no lease)
 * and its budget. Fails if a run with this id exists. Used by every mode that starts a sweep.
 */
export async function startSweepRun(
  ledger: Ledger,
  options: {
    table: SiteLogixTable;
    totalSegments: number;
    concurrency?: number;
    maxWcu?: number;
    owner?: SweepOwner;
    /** Defaults to the start time and a random suffix (ids sort by age). */
    sweepId?: string;
  },
): Promise<SweepRun> {
  const startedAt = new Date().toISOString();
  const run: SweepRun = {
    table: options.table,
    sweepId: options.sweepId ?? `${startedAt}-${randomBytes(3).toString("hex")}`,
    startedAt,
    status: "running",
    totalSegments: options.totalSegments,
    counts: emptySweepCounts(),
    ...(options.owner ? { owner: options.owner } : {}),
  };
  await ledger.createSweep(run);
  await setSweepControl(ledger, run, {
    concurrency: options.concurrency ?? SWEEP_DEFAULTS.concurrency,
    ...(options.maxWcu !== undefined ? { maxWcu: options.maxWcu } : {}),
  });
  const segments = Array.from({ length: run.totalSegments }, (_, segment) => segment);
  for (let i = 0; i < segments.length; i += 16) {
    await Promise.all(
      segments.slice(i, i + 16).map((segment) =>
        ledger.put(ledgerKeys.sweepSegment(run.table, run.sweepId, segment), {
          table: run.table,
          sweepId: run.sweepId,
          segment,
          done: false,
          pages: 0,
          counts: emptySweepCounts(),
          updatedAt: startedAt,
        } satisfies SweepCheckpoint),
      ),
    );
  }
  return run;
}

/** Sets a run's budget; workers take their share of it within one control interval. */
export async function setSweepControl(
  ledger: Ledger,
  run: Pick<SweepRun, "table" | "sweepId">,
  fields: { maxWcu?: number | null; concurrency?: number },
): Promise<SweepControl> {
  const sets = ["#table = :table", "sweepId = :id", "updatedAt = :now", "throttles = if_not_exists(throttles, :zero)"];
  const values: Record<string, unknown> = {
    ":table": run.table,
    ":id": run.sweepId,
    ":now": new Date().toISOString(),
    ":zero": 0,
    ":conc": fields.concurrency ?? SWEEP_DEFAULTS.concurrency,
  };
  const removes: string[] = [];
  if (fields.concurrency !== undefined) sets.push("concurrency = :conc");
  else sets.push("concurrency = if_not_exists(concurrency, :conc)");
  if (fields.maxWcu === null) removes.push("maxWcu");
  else if (fields.maxWcu !== undefined) {
    sets.push("maxWcu = :wcu");
    values[":wcu"] = fields.maxWcu;
  }
  const out = await ledger.doc.send(
    new UpdateCommand({
      TableName: ledger.tableName,
      Key: ledgerKeys.sweepControl(run.table, run.sweepId),
      UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
      ExpressionAttributeNames: { "#table": "table" },
      ExpressionAttributeValues: values,
      ReturnValues: "ALL_NEW",
    }),
  );
  return out.Attributes as SweepControl;
}

export async function sweepControl(ledger: Ledger, table: LogicalTable, sweepId: string) {
  return ledger.get<SweepControl>(ledgerKeys.sweepControl(table, sweepId));
}

/** Counts a slowdown for every worker of the run (each slows down when it sees the count rise). */
export async function countSweepThrottle(ledger: Ledger, table: SiteLogixTable, sweepId: string): Promise<number> {
  const out = await ledger.doc.send(
    new UpdateCommand({
      TableName: ledger.tableName,
      Key: ledgerKeys.sweepControl(table, sweepId),
      UpdateExpression: "ADD throttles :one",
      ExpressionAttributeValues: { ":one": 1 },
      ReturnValues: "UPDATED_NEW",
    }),
  );
  return Number(out.Attributes?.throttles ?? 0);
}

/** A segment that another live worker holds. */
export class SegmentBusyError extends Error {
  constructor(
    readonly segment: number,
    readonly holder: string | undefined,
  ) {
    super(`segment ${segment} is held by ${holder ?? "another worker"}; its lease has not expired`);
    this.name = "SegmentBusyError";
  }
}

/** The lease was taken over (this worker was too slow to renew it): it must stop writing. */
export class LeaseLostError extends Error {
  constructor(readonly segment: number) {
    super(`segment ${segment}: the lease was taken over by another worker; this one stops`);
    this.name = "LeaseLostError";
  }
}

type Position = Pick<SweepCheckpoint, "cursor" | "done" | "pages" | "counts"> &
  Partial<Pick<SweepCheckpoint, "itemsPerSecond" | "wcuPerSecond">>;

/** One worker's leases on the segments of one run. */
export class SegmentLeases {
  constructor(
    readonly ledger: Ledger,
    readonly table: SiteLogixTable,
    readonly sweepId: string,
    readonly holder: string,
    readonly leaseMs: number = SWEEP_DEFAULTS.leaseMs,
  ) {}

  private key(segment: number) {
    return ledgerKeys.sweepSegment(this.table, this.sweepId, segment);
  }

  /**
   * Claims a segment: returns its checkpoint, or undefined when it is done. Throws SegmentBusyError
   * when another worker holds an unexpired lease (of a live process, on this host). `force` takes
   * it regardless (the caller owns the whole run). Clears a recorded failure.
   */
  async claim(segment: number, options: { force?: boolean } = {}): Promise<SweepCheckpoint | undefined> {
    const now = Date.now();
    const current = await this.ledger.get<SweepCheckpoint>(this.key(segment));
    if (current?.done) return undefined;
    const takeOver = options.force || isDeadLocalHolder(current?.leaseHolder);
    const empty = emptySweepCounts();
    try {
      const out = await this.ledger.doc.send(
        new UpdateCommand({
          TableName: this.ledger.tableName,
          Key: this.key(segment),
          UpdateExpression:
            "SET leaseHolder = :me, leaseUntil = :until, #table = :table, sweepId = :id, #segment = :segment, " +
            "#done = if_not_exists(#done, :false), #pages = if_not_exists(#pages, :zero), " +
            "#counts = if_not_exists(#counts, :empty), updatedAt = :iso REMOVE failedAt, #error",
          ConditionExpression:
            "(attribute_not_exists(#done) OR #done = :false) AND (attribute_not_exists(leaseHolder) OR " +
            `leaseHolder = :me OR leaseUntil < :now${takeOver ? " OR leaseHolder = :seen" : ""})`,
          ExpressionAttributeNames: {
            "#table": "table",
            "#segment": "segment",
            "#done": "done",
            "#pages": "pages",
            "#counts": "counts",
            "#error": "error",
          },
          ExpressionAttributeValues: {
            ":me": this.holder,
            ":until": now + this.leaseMs,
            ":now": now,
            ":table": this.table,
            ":id": this.sweepId,
            ":segment": segment,
            ":false": false,
            ":zero": 0,
            ":empty": empty,
            ":iso": new Date(now).toISOString(),
            ...(takeOver ? { ":seen": current?.leaseHolder ?? this.holder } : {}),
          },
          ReturnValues: "ALL_NEW",
        }),
      );
      return out.Attributes as SweepCheckpoint;
    } catch (err) {
      if (!isErrorNamed(err, "ConditionalCheckFailedException")) throw err;
      const now2 = await this.ledger.get<SweepCheckpoint>(this.key(segment));
      if (now2?.done) return undefined;
      throw new SegmentBusyError(segment, now2?.leaseHolder);
    }
  }

  /**
   * Writes the segment's position (and renews the lease) while this worker holds it; `release`
   * gives the lease up in the same write. Throws LeaseLostError when another worker took it.
   */
  async save(segment: number, position: Partial<Position>, options: { release?: boolean } = {}): Promise<void> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ":me": this.holder, ":iso": new Date().toISOString() };
    const sets = ["updatedAt = :iso"];
    Object.entries(position).forEach(([k, v], i) => {
      if (v === undefined) return;
      names[`#f${i}`] = k;
      values[`:f${i}`] = v;
      sets.push(`#f${i} = :f${i}`);
    });
    if (!options.release) {
      values[":until"] = Date.now() + this.leaseMs;
      sets.push("leaseUntil = :until");
    }
    try {
      await this.ledger.doc.send(
        new UpdateCommand({
          TableName: this.ledger.tableName,
          Key: this.key(segment),
          UpdateExpression: `SET ${sets.join(", ")}${options.release ? " REMOVE leaseHolder, leaseUntil" : ""}`,
          ConditionExpression: "leaseHolder = :me",
          ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (isErrorNamed(err, "ConditionalCheckFailedException")) throw new LeaseLostError(segment);
      throw err;
    }
  }

  /** Records why the segment failed and gives up its lease (best effort: the ledger may be what failed). */
  async fail(segment: number, error: string): Promise<void> {
    try {
      await this.ledger.doc.send(
        new UpdateCommand({
          TableName: this.ledger.tableName,
          Key: this.key(segment),
          UpdateExpression: "SET failedAt = :at, #error = :error REMOVE leaseHolder, leaseUntil",
          ConditionExpression: "leaseHolder = :me",
          ExpressionAttributeNames: { "#error": "error" },
          ExpressionAttributeValues: { ":me": this.holder, ":at": new Date().toISOString(), ":error": error },
        }),
      );
    } catch {
      // Nothing more to do: the lease expires and the checkpoint stands.
    }
  }
}

/** Marks a run finished once every segment is done (any worker may; the first one wins). */
export async function finishRunIfComplete(
  ledger: Ledger,
  table: SiteLogixTable,
  sweepId: string,
): Promise<{ finished: boolean; counts: SweepCounts }> {
  const segments = await ledger.checkpoints(table, sweepId);
  const counts = sumCounts(segments);
  const run = await ledger.get<SweepRun>(ledgerKeys.sweep(table, sweepId));
  if (!run || segments.length < run.totalSegments || !segments.every((s) => s.done)) return { finished: false, counts };
  try {
    await ledger.doc.send(
      new UpdateCommand({
        TableName: ledger.tableName,
        Key: ledgerKeys.sweep(table, sweepId),
        UpdateExpression: "SET #status = :finished, finishedAt = :now, #counts = :counts",
        ConditionExpression: "#status <> :finished",
        ExpressionAttributeNames: { "#status": "status", "#counts": "counts" },
        ExpressionAttributeValues: { ":finished": "finished", ":now": new Date().toISOString(), ":counts": counts },
      }),
    );
  } catch (err) {
    if (!isErrorNamed(err, "ConditionalCheckFailedException")) throw err;
  }
  return { finished: true, counts };
}

export function sumCounts(segments: { counts?: SweepCounts }[]): SweepCounts {
  const total = emptySweepCounts();
  for (const s of segments)
    for (const k of Object.keys(total) as (keyof SweepCounts)[]) total[k] += Number(s.counts?.[k] ?? 0);
  return total;
}
