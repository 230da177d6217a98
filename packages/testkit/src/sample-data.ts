// A realistic, deterministic SiteLogix dataset (as the old application code wrote it: camelCase,
// with the hard cases of production) and a simulator of live application traffic. Local mode, the
// tests and the benchmarks share them.
import { sleep } from "@sitelogix/core";
import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from "@aws-sdk/lib-dynamodb";
import { type Item, isErrorNamed, type SiteLogixTable, type TableNames } from "@sitelogix/core";

/** Deterministic PRNG (mulberry32): the same seed gives the same dataset. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SampleRow {
  table: SiteLogixTable;
  item: Item;
}

export interface DatasetOptions {
  /**
   * Total items over the four legacy tables
   * (approximate split: reports 30%, personnel 35%, vendors 15%, constraints 20%).
   */
  items: number;
  seed?: number;
  /** Size of report transcripts; every 200th report gets a 120 KB one unless `largeTranscripts` is false. */
  transcriptBytes?: number;
  /** Benchmarks turn the 120 KB transcripts off to get items of uniform size. */
  largeTranscripts?: boolean;
  /**
   * Plant items no rule can fix (numeric fullName, numeric dateLastSeen, unknown employmentStatus):
   * verify must find them.
   */
  violations?: boolean;
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const pad = (n: number, width = 5) => String(n).padStart(width, "0");
const day = (rnd: () => number) => `2025-${pad(1 + Math.floor(rnd() * 11), 2)}-${pad(1 + Math.floor(rnd() * 28), 2)}`;
const iso = (date: string, rnd: () => number) =>
  `${date}T${pad(6 + Math.floor(rnd() * 12), 2)}:${pad(Math.floor(rnd() * 60), 2)}:00.000Z`;
const text = (rnd: () => number, bytes: number) => {
  const words = [
    "pour",
    "rebar",
    "inspection",
    "crane",
    "delay",
    "weather",
    "crew",
    "formwork",
    "slab",
    "permit",
    "safety",
    "delivery",
  ];
  let s = "";
  while (s.length < bytes) s += `${pick(rnd, words)} `;
  return s.slice(0, bytes);
};

const FIRST = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Edsger", "Barbara", "Dennis", "Frances"];
const LAST = [
  "Lovelace",
  "Hopper",
  "Turing",
  "Johnson",
  "Torvalds",
  "Hamilton",
  "Dijkstra",
  "Liskov",
  "Ritchie",
  "Allen",
];
const EMPLOYMENT = ["active", "active", "active", "on_leave", "inactive", "terminated"] as const;
const VENDOR_TYPES = ["supplier", "subcontractor", "rental", "consultant"] as const;

/**
 * Generates the dataset row by row (constant memory, any size). Every item is as legacy code wrote
 * it; about a fifth already carry some snake_case copies (from earlier scripts), some stale.
 */
export function* generateDataset(options: DatasetOptions): Generator<SampleRow> {
  const rnd = random(options.seed ?? 42);
  const transcriptBytes = options.transcriptBytes ?? 600;
  const n = options.items;
  const reports = Math.round(n * 0.3);
  const people = Math.round(n * 0.15);
  const vendors = Math.round(n * 0.05);
  // A person has a profile and about 0.7 HISTORY# items; a vendor a profile and 2 DELIVERY# items.
  const constraints = Math.max(0, n - reports - Math.round(people * 1.67) - vendors * 3);
  const audit = (createdAt: string) => ({
    createdAt,
    updatedAt: createdAt,
    version: 1,
    lastModifiedBy: `user_${Math.floor(rnd() * 50)}`,
  });

  for (let i = 0; i < reports; i++) {
    const reportDate = day(rnd);
    const item: Item = {
      PK: `REPORT#r${pad(i)}`,
      SK: "METADATA",
      projectId: `proj_${pad(Math.floor(rnd() * 40), 3)}`,
      managerId: `mgr_${pad(Math.floor(rnd() * 20), 2)}`,
      reportDate,
      submittedAt: iso(reportDate, rnd),
      weather: pick(rnd, ["sunny", "rain", "wind", "snow"]),
      transcript: text(rnd, i % 200 === 7 && options.largeTranscripts !== false ? 120_000 : transcriptBytes),
      ...audit(iso(reportDate, rnd)),
    };
    if (i % 10 === 3) delete item.createdAt; // timestamp falls back to submittedAt
    if (i % 25 === 4) item.status = ""; // empty counts as absent
    if (i % 7 === 5) item.status = "draft"; // the application's own status: never overwritten
    // The application's own timestamp (not createdAt): a derived value the migrator never rewrites.
    if (i % 13 === 8 && typeof item.createdAt === "string")
      item.timestamp = new Date(Date.parse(item.createdAt) + 1_800_000).toISOString();
    if (i % 5 === 1) item.project_id = item.projectId; // already copied by an earlier script
    if (i % 50 === 2) item.project_id = "proj_stale"; // a stale copy: follows its source
    yield { table: "reports", item };
  }

  for (let i = 0; i < people; i++) {
    const pk = `PERSON#e${pad(i)}`;
    const createdAt = iso(day(rnd), rnd);
    const item: Item = {
      PK: pk,
      SK: "PROFILE",
      fullName: `${pick(rnd, FIRST)} ${pick(rnd, LAST)}`,
      employmentStatus: pick(rnd, EMPLOYMENT),
      phone: `+1-555-${pad(Math.floor(rnd() * 10000), 4)}`,
      email: `person${i}@example.com`,
      projectId: `proj_${pad(Math.floor(rnd() * 40), 3)}`,
      ...audit(createdAt),
    };
    if (i % 9 === 2) delete item.employmentStatus; // status defaults to active
    if (i % 4 === 0) item.full_name = item.fullName;
    if (i % 10 === 7) item.status = "inactive"; // set by the application, whatever employmentStatus says
    if (i % 12 === 5) item.dateLastSeen = createdAt.slice(0, 10); // the application's own, older than later visits
    if (i % 11 === 6) item.status = ""; // empty counts as absent
    if (options.violations && i % 97 === 13) item.fullName = 4242; // numeric: no rule may copy it
    if (options.violations && i % 89 === 17) item.dateLastSeen = 20250101; // wrong type in a future key
    if (options.violations && i % 83 === 19) item.employmentStatus = "seasonal"; // unmapped
    yield { table: "personnel", item };
    // HISTORY#: one per person on average; dateLastSeen comes from the latest of them.
    const visits = i % 3 === 0 ? 0 : Math.floor(rnd() * 3);
    for (let v = 0; v < visits; v++) {
      const reportDate = day(rnd);
      yield {
        table: "personnel",
        item: {
          PK: pk,
          SK: `HISTORY#${reportDate}#r${pad(Math.floor(rnd() * reports))}`,
          reportDate,
          hoursWorked: 4 + Math.floor(rnd() * 8),
          projectId: `proj_${pad(Math.floor(rnd() * 40), 3)}`,
        },
      };
    }
  }

  for (let i = 0; i < vendors; i++) {
    const pk = `VENDOR#v${pad(i)}`;
    const item: Item = {
      PK: pk,
      SK: "PROFILE",
      companyName: `${pick(rnd, LAST)} ${pick(rnd, ["Concrete", "Steel", "Electric", "Rentals", "Plumbing"])} ${i}`,
      contactEmail: `vendor${i}@example.com`,
      ...audit(iso(day(rnd), rnd)),
    };
    if (i % 3 !== 0) item.vendorType = pick(rnd, VENDOR_TYPES); // a third have none: defaults to supplier
    if (i % 6 === 1) item.vendor_type = ""; // empty counts as absent
    if (i % 9 === 3) item.vendor_type = "rental"; // no vendorType: the application's own type stays
    if (i % 4 === 2) item.dateLastSeen = "2024-12-31"; // the application's own
    yield { table: "vendors", item };
    for (let d = 0; d < 2; d++) {
      const date = day(rnd);
      yield {
        table: "vendors",
        item: {
          PK: pk,
          SK: `DELIVERY#${date}#${d}`,
          deliveredAt: iso(date, rnd),
          amount: Math.round(rnd() * 100000) / 100,
        },
      };
    }
  }

  for (let i = 0; i < constraints; i++) {
    const project = `proj_${pad(Math.floor(rnd() * 40), 3)}`;
    const item: Item = {
      PK: `PROJECT#${project}`,
      SK: `CONSTRAINT#c${pad(i)}`,
      projectId: project,
      reportDate: day(rnd),
      category: pick(rnd, ["weather", "material", "labor", "permit", "equipment"]),
      dateIdentified: day(rnd),
      status: pick(rnd, ["open", "resolved", "mitigated"]),
      severity: pick(rnd, ["low", "medium", "high"]),
      description: text(rnd, 200),
      ...audit(iso(day(rnd), rnd)),
    };
    if (i % 8 === 3) delete item.projectId; // legitimately absent from the project-date index
    if (i % 13 === 5) item.project_id = ""; // an empty copy with no source
    yield { table: "constraints", item };
  }
}

/** Writes rows with BatchWriteItem (25 per request, several in flight), retrying unprocessed items. */
export async function loadDataset(
  doc: DynamoDBDocumentClient,
  names: TableNames,
  rows: Iterable<SampleRow>,
  options: { inFlight?: number } = {},
): Promise<number> {
  let written = 0;
  const inFlight = new Set<Promise<void>>();
  const writeBatch = async (table: SiteLogixTable, items: Item[]) => {
    let requests: Record<string, { PutRequest: { Item: Item } }[]> = {
      [names[table]]: items.map((Item) => ({ PutRequest: { Item } })),
    };
    for (let attempt = 0; Object.keys(requests).length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
      const out = await doc.send(new BatchWriteCommand({ RequestItems: requests }));
      requests = (out.UnprocessedItems ?? {}) as typeof requests;
    }
    written += items.length;
  };
  const batches = new Map<SiteLogixTable, Item[]>();
  const flush = async (table: SiteLogixTable) => {
    const items = batches.get(table);
    if (!items?.length) return;
    batches.set(table, []);
    const p = writeBatch(table, items).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= (options.inFlight ?? 8)) await Promise.race(inFlight);
  };
  for (const row of rows) {
    const items = batches.get(row.table) ?? [];
    items.push(row.item);
    batches.set(row.table, items);
    if (items.length === 25) await flush(row.table);
  }
  for (const table of batches.keys()) await flush(table);
  await Promise.all(inFlight);
  return written;
}

export type TrafficOperation = "insert" | "update" | "delete" | "fullPut";

export interface TrafficStats {
  insert: number;
  update: number;
  delete: number;
  fullPut: number;
  /** Optimistic-lock or existence conditions that failed (the application's own races). */
  conflicts: number;
  errors: number;
}

/** One successful application write, as `ApplicationTraffic` journals it (with `journal: true`). */
export interface AppWrite {
  op: TrafficOperation;
  table: SiteLogixTable;
  key: { PK: string; SK: string };
  /** insert/fullPut: the whole item written; update: the attributes set. */
  attributes?: Item;
  /** The item's version after the write (versions order the writes of one item). */
  version?: number;
}

/**
 * Live application traffic from code that does not know about the migration: inserts in camelCase,
 * updates with optimistic locking on `version`, deletes, and old-code full-item puts that drop every
 * attribute the old model does not know (snake_case copies and migrator markers included).
 */
export class ApplicationTraffic {
  readonly stats: TrafficStats = { insert: 0, update: 0, delete: 0, fullPut: 0, conflicts: 0, errors: 0 };
  /** Successful writes, in completion order (only with `journal: true`). */
  readonly journal: AppWrite[] = [];
  private readonly keys: Map<SiteLogixTable, { PK: string; SK: string }[]> = new Map();
  private readonly rnd: () => number;
  private running?: Promise<void>;
  private stopping = false;
  private counter = 0;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly names: TableNames,
    private readonly options: {
      opsPerSecond: number;
      seed?: number;
      tables?: SiteLogixTable[];
      journal?: boolean;
      /**
       * New application code: a third of the updates also set a derived attribute
       * (status, timestamp, dateLastSeen) itself.
       */
      derivedWrites?: boolean;
    },
  ) {
    this.rnd = random(options.seed ?? 7);
  }

  /** Makes existing items candidates for updates, deletes and full puts. */
  know(table: SiteLogixTable, key: { PK: string; SK: string }): void {
    const list = this.keys.get(table) ?? [];
    list.push(key);
    this.keys.set(table, list);
  }

  /** Starts (or resumes after `stop`) writing at the configured rate. */
  start(): void {
    this.stopping = false;
    this.running = this.loop();
  }

  /** Stops after the writes in flight; the stats count every period of traffic. */
  async stop(): Promise<TrafficStats> {
    this.stopping = true;
    await this.running;
    return this.stats;
  }

  private async loop(): Promise<void> {
    const interval = 1000 / this.options.opsPerSecond;
    let next = Date.now();
    const inFlight = new Set<Promise<void>>();
    while (!this.stopping) {
      const p = this.operate().finally(() => inFlight.delete(p));
      inFlight.add(p);
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      if (inFlight.size > 64) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  private async operate(): Promise<void> {
    const tables = this.options.tables ?? (["reports", "personnel", "vendors", "constraints"] as SiteLogixTable[]);
    const table = pick(this.rnd, tables);
    const roll = this.rnd();
    const op: TrafficOperation = roll < 0.35 ? "insert" : roll < 0.8 ? "update" : roll < 0.9 ? "delete" : "fullPut";
    try {
      await this[op](table);
      this.stats[op]++;
    } catch (err) {
      if (isErrorNamed(err, "ConditionalCheckFailedException")) this.stats.conflicts++;
      else this.stats.errors++;
    }
  }

  private record(write: AppWrite): void {
    if (this.options.journal) this.journal.push(write);
  }

  private randomKey(table: SiteLogixTable) {
    const list = this.keys.get(table);
    return list?.length ? list[Math.floor(this.rnd() * list.length)] : undefined;
  }

  private async insert(table: SiteLogixTable): Promise<void> {
    const id = `live${pad(this.counter++, 7)}`;
    const now = new Date().toISOString();
    const base = { createdAt: now, updatedAt: now, version: 1, lastModifiedBy: `app_${Math.floor(this.rnd() * 20)}` };
    const project = `proj_${pad(Math.floor(this.rnd() * 40), 3)}`;
    const items: Record<SiteLogixTable, Item> = {
      reports: {
        PK: `REPORT#${id}`,
        SK: "METADATA",
        projectId: project,
        managerId: "mgr_01",
        reportDate: now.slice(0, 10),
        transcript: "live report",
        ...base,
      },
      personnel: {
        PK: `PERSON#${id}`,
        SK: "PROFILE",
        fullName: `${pick(this.rnd, FIRST)} ${pick(this.rnd, LAST)}`,
        employmentStatus: pick(this.rnd, EMPLOYMENT),
        ...base,
      },
      vendors: {
        PK: `VENDOR#${id}`,
        SK: "PROFILE",
        companyName: `Live Vendor ${id}`,
        vendorType: pick(this.rnd, VENDOR_TYPES),
        ...base,
      },
      constraints: {
        PK: `PROJECT#${project}`,
        SK: `CONSTRAINT#${id}`,
        projectId: project,
        reportDate: now.slice(0, 10),
        category: "labor",
        dateIdentified: now.slice(0, 10),
        status: "open",
        severity: "low",
        ...base,
      },
      "work-logs": {
        PK: `WORKLOG#${id}`,
        SK: "ENTRY",
        projectId: project,
        reportDate: now.slice(0, 10),
        teamId: "team_1",
        ...base,
      },
      "ai-analysis-cache": {
        PK: `ANALYSIS#${id}`,
        SK: "RESULT",
        analysisType: "summary",
        modelUsed: "model-a",
        ...base,
      },
    };
    const item = items[table];
    await this.doc.send(
      new PutCommand({ TableName: this.names[table], Item: item, ConditionExpression: "attribute_not_exists(PK)" }),
    );
    const key = { PK: item.PK as string, SK: item.SK as string };
    this.know(table, key);
    this.record({ op: "insert", table, key, attributes: item, version: 1 });
  }

  private async update(table: SiteLogixTable): Promise<void> {
    const key = this.randomKey(table);
    if (!key) return this.insert(table);
    const current = (await this.doc.send(new GetCommand({ TableName: this.names[table], Key: key }))).Item;
    if (!current) return;
    const change: Record<SiteLogixTable, Item> = {
      reports: { projectId: `proj_${pad(Math.floor(this.rnd() * 40), 3)}` },
      personnel:
        key.SK === "PROFILE"
          ? {
              employmentStatus: pick(this.rnd, EMPLOYMENT),
              fullName: `${pick(this.rnd, FIRST)} ${pick(this.rnd, LAST)}`,
            }
          : { hoursWorked: 8 },
      vendors: key.SK === "PROFILE" ? { vendorType: pick(this.rnd, VENDOR_TYPES) } : { amount: 10 },
      constraints: {
        reportDate: new Date().toISOString().slice(0, 10),
        severity: pick(this.rnd, ["low", "medium", "high"]),
      },
      "work-logs": { teamId: `team_${Math.floor(this.rnd() * 5)}` },
      "ai-analysis-cache": { analysisType: "risk" },
    };
    const fields = {
      ...change[table],
      ...this.derivedWrite(table, key),
      updatedAt: new Date().toISOString(),
      lastModifiedBy: `app_${Math.floor(this.rnd() * 20)}`,
    };
    const names: Record<string, string> = { "#version": "version" };
    const values: Record<string, unknown> = { ":one": 1 };
    const sets = Object.entries(fields).map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:f${i}`] = v;
      return `#f${i} = :f${i}`;
    });
    const hasVersion = current.version !== undefined;
    if (hasVersion) values[":expected"] = current.version;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.names[table],
        Key: key,
        UpdateExpression: `SET ${sets.join(", ")} ADD #version :one`,
        ConditionExpression: hasVersion
          ? "#version = :expected"
          : "attribute_exists(PK) AND attribute_not_exists(#version)",
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
    this.record({
      op: "update",
      table,
      key,
      attributes: fields,
      ...(hasVersion ? { version: Number(current.version) + 1 } : {}),
    });
  }

  /** What new application code sets of the derived attributes in an update (nothing without `derivedWrites`). */
  private derivedWrite(table: SiteLogixTable, key: { SK: string }): Item {
    if (!this.options.derivedWrites || this.rnd() >= 1 / 3) return {};
    const now = new Date().toISOString();
    const profile = key.SK === "PROFILE";
    if (table === "reports")
      return this.rnd() < 0.5 ? { status: pick(this.rnd, ["draft", "in_review", "archived"]) } : { timestamp: now };
    if (table === "personnel" && profile)
      return this.rnd() < 0.5
        ? { status: pick(this.rnd, ["active", "inactive", "archived"]) }
        : { dateLastSeen: now.slice(0, 10) };
    if (table === "vendors" && profile) return { dateLastSeen: now.slice(0, 10) };
    return {};
  }

  private async delete(table: SiteLogixTable): Promise<void> {
    const list = this.keys.get(table);
    if (!list?.length) return;
    const [key] = list.splice(Math.floor(this.rnd() * list.length), 1);
    await this.doc.send(new DeleteCommand({ TableName: this.names[table], Key: key }));
    this.record({ op: "delete", table, key: key! });
  }

  /** Old code: reads the item into its model (camelCase fields only) and writes the whole item back. */
  private async fullPut(table: SiteLogixTable): Promise<void> {
    const key = this.randomKey(table);
    if (!key) return;
    const current = (await this.doc.send(new GetCommand({ TableName: this.names[table], Key: key }))).Item;
    if (!current) return;
    // The old model knows no snake_case copies, no migrator markers, no timestamp or dateLastSeen, and
    // for people no status (reports had one before the migration).
    const unknown = new Set(["timestamp", "dateLastSeen", ...(table === "personnel" ? ["status"] : [])]);
    const oldModel = Object.fromEntries(Object.entries(current).filter(([k]) => !k.includes("_") && !unknown.has(k)));
    const version = current.version;
    const item = {
      ...oldModel,
      ...key,
      updatedAt: new Date().toISOString(),
      version: typeof version === "object" || typeof version === "number" ? Number(version) + 1 : 1,
    };
    await this.doc.send(
      new PutCommand({
        TableName: this.names[table],
        Item: item,
        ...(version !== undefined
          ? { ConditionExpression: "version = :v", ExpressionAttributeValues: { ":v": version } }
          : {}),
      }),
    );
    this.record({ op: "fullPut", table, key, attributes: item, version: item.version });
  }
}
