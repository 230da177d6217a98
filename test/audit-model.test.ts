// The audit entry model without a database: canonical encoding (binary, numbers, sets), diff,
// actor attribution, the field table (every field hashed, stored and read back), retention, time
// bounds and output formats.
import type { DynamoDBRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import {
  canonicalNumber,
  defaultTableNames,
  ENTRY_FIELDS,
  entryContent,
  entryHash,
  entryJson,
  formatEntries,
  GENESIS_HASH,
  MalformedRecordError,
  MIGRATOR_ACTORS,
  MIGRATOR_MARKER,
  migratorActor,
  retentionFromEnv,
  type AttributeMap,
  type AuditEntry,
  type EntryContent,
} from "@sitelogix/core";
import { decodeEntry, storedEntry } from "@sitelogix/core/audit/store";
import { parseAuditTime } from "@sitelogix/cli/args";

const names = defaultTableNames("x-");
const ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/x-sitelogix-personnel/stream/2025-01-01T00:00:00.000";

function record(
  eventName: "INSERT" | "MODIFY" | "REMOVE",
  images: { old?: Record<string, unknown>; new?: Record<string, unknown> },
  extra: Partial<DynamoDBRecord> = {},
): DynamoDBRecord {
  return {
    eventID: "ev-1",
    eventName,
    eventSourceARN: ARN,
    dynamodb: {
      ApproximateCreationDateTime: 1_764_000_000,
      Keys: { PK: { S: "PERSON#e1" }, SK: { S: "PROFILE" } },
      SequenceNumber: "000000000000000000123",
      ...(images.new ? { NewImage: images.new as never } : {}),
      ...(images.old ? { OldImage: images.old as never } : {}),
    },
    ...extra,
  };
}

const placed = (content: EntryContent): Omit<AuditEntry, "hash"> => ({
  ...content,
  position: 1,
  prevHash: GENESIS_HASH,
  recordedAt: "2025-11-24T00:00:00.000Z",
});
const hashOf = (r: DynamoDBRecord) => entryHash(placed(entryContent(r, names)));

const person = {
  PK: { S: "PERSON#e1" },
  SK: { S: "PROFILE" },
  fullName: { S: "Ada Lovelace" },
  lastModifiedBy: { S: "user_1" },
};

describe("canonical encoding", () => {
  it("hashes a binary value the same from a Lambda event (base64) and from the Streams API (bytes)", () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);
    const fromStreamsApi = record("INSERT", {
      new: { ...person, photo: { B: bytes }, docs: { BS: [bytes, new Uint8Array([7])] } },
    });
    const fromLambda = record("INSERT", {
      new: {
        ...person,
        photo: { B: Buffer.from(bytes).toString("base64") },
        docs: { BS: ["Bw==", Buffer.from(bytes).toString("base64")] },
      },
    });
    expect(hashOf(fromLambda)).toBe(hashOf(fromStreamsApi));
    const different = record("INSERT", { new: { ...person, photo: { B: "AAE=" }, docs: { BS: ["Bw=="] } } });
    expect(hashOf(different)).not.toBe(hashOf(fromStreamsApi));
  });

  it("encodes equal numbers equally, exactly, whatever their notation; sets in any order", () => {
    expect(canonicalNumber("1.50")).toBe(canonicalNumber("15E-1"));
    expect(canonicalNumber("-0.0")).toBe("0");
    expect(canonicalNumber("100")).toBe(canonicalNumber("1e2"));
    expect(canonicalNumber("12345678901234567890123456789012345678")).toBe("12345678901234567890123456789012345678e0");
    expect(canonicalNumber("12345678901234567890123456789012345678")).not.toBe(
      canonicalNumber("12345678901234567890123456789012345679"),
    );
    const a = record("INSERT", {
      new: { ...person, n: { N: "1.50" }, tags: { SS: ["b", "a"] }, ns: { NS: ["2", "10"] } },
    });
    const b = record("INSERT", {
      new: { ...person, n: { N: "1.5" }, tags: { SS: ["a", "b"] }, ns: { NS: ["10", "2.0"] } },
    });
    expect(hashOf(a)).toBe(hashOf(b));
  });

  it("rejects an image that is not DynamoDB's, naming the attribute but never its value", () => {
    const bad = record("INSERT", { new: { ...person, phone: { X: "+1-555-0100" } } });
    expect(() => entryContent(bad, names)).toThrow(MalformedRecordError);
    expect(() => entryContent(bad, names)).toThrow(/phone/);
    try {
      entryContent(bad, names);
    } catch (err) {
      expect((err as Error).message).not.toContain("555");
    }
    expect(() => entryContent(record("INSERT", { new: { ...person, n: { N: "12abc" } } }), names)).toThrow(
      MalformedRecordError,
    );
    expect(() => entryContent(record("MODIFY", { new: person }), names)).toThrow(/MODIFY without both images/);
    expect(() => entryContent(record("INSERT", { new: person }, { eventName: "UPSERT" as never }), names)).toThrow(
      /unknown eventName/,
    );
  });
});

describe("entry content", () => {
  it("INSERT holds the whole new image, REMOVE the whole old image, MODIFY only the changed attributes", () => {
    const ins = entryContent(record("INSERT", { new: person }), names);
    expect(ins).toMatchObject({
      table: "personnel",
      tableName: "x-sitelogix-personnel",
      keys: { PK: "PERSON#e1", SK: "PROFILE" },
      eventName: "INSERT",
      actor: "user_1",
      actorBasis: "new:lastModifiedBy",
    });
    expect(ins.changed).toEqual(["PK", "SK", "fullName", "lastModifiedBy"]);
    expect(ins.new).toEqual(person);
    expect(ins.old).toBeUndefined();
    expect(ins.at).toBe(new Date(1_764_000_000_000).toISOString());

    const mod = entryContent(
      record("MODIFY", {
        old: { ...person, phone: { S: "1" } },
        new: { ...person, fullName: { S: "Ada King" }, lastModifiedBy: { S: "user_2" }, email: { S: "a@x" } },
      }),
      names,
    );
    expect(mod.changed).toEqual(["email", "fullName", "lastModifiedBy", "phone"]);
    expect(mod.old).toEqual({ fullName: { S: "Ada Lovelace" }, lastModifiedBy: { S: "user_1" }, phone: { S: "1" } });
    expect(mod.new).toEqual({ fullName: { S: "Ada King" }, lastModifiedBy: { S: "user_2" }, email: { S: "a@x" } });
    expect(mod).toMatchObject({ actor: "user_2", actorBasis: "new:lastModifiedBy" });

    const rem = entryContent(record("REMOVE", { old: person }), names);
    expect(rem).toMatchObject({ actor: "user_1", actorBasis: "old:lastModifiedBy", old: person });
    expect(rem.new).toBeUndefined();
  });

  it(
    "attributes TTL deletions to the service in both casings, updatedBy when there is no " +
      "lastModifiedBy, and says when nobody is named",
    () => {
      for (const userIdentity of [
        { type: "Service", principalId: "dynamodb.amazonaws.com" },
        { Type: "Service", PrincipalId: "dynamodb.amazonaws.com" },
      ]) {
        const ttl = entryContent(record("REMOVE", { old: person }, { userIdentity: userIdentity as never }), names);
        expect(ttl).toMatchObject({ actor: "dynamodb.amazonaws.com", actorBasis: "service" });
      }
      const { lastModifiedBy: _, ...anonymous } = person;
      expect(
        entryContent(record("INSERT", { new: { ...anonymous, updatedBy: { S: "svc_batch" } } }), names),
      ).toMatchObject({ actor: "svc_batch", actorBasis: "new:updatedBy" });
      expect(entryContent(record("INSERT", { new: anonymous }), names)).toMatchObject({
        actor: "unknown",
        actorBasis: "none",
      });
    },
  );
});

describe("migrator attribution", () => {
  const rev = (n: number) => ({ _migrationRev: { N: String(n) } });
  const by = (writer: keyof typeof MIGRATOR_ACTORS) => ({ _migratedBy: { S: MIGRATOR_ACTORS[writer] } });
  const base: AttributeMap = {
    PK: { S: "PERSON#e1" },
    SK: { S: "PROFILE" },
    fullName: { S: "Ada" },
    version: { N: "3" },
    lastModifiedBy: { S: "user_1" },
  };
  const attribute = (oldImage: AttributeMap, newImage: AttributeMap) => {
    const changed = Object.keys({ ...oldImage, ...newImage }).filter(
      (k) => JSON.stringify(oldImage[k]) !== JSON.stringify(newImage[k]),
    );
    return migratorActor("personnel", oldImage, newImage, changed);
  };

  it("recognises the migrator's writes: the first (no revision yet) and later ones, by either writer", () => {
    expect(attribute(base, { ...base, full_name: { S: "Ada" }, ...by("normalizer"), ...rev(1) })).toBe(
      MIGRATOR_ACTORS.normalizer,
    );
    expect(
      attribute(
        { ...base, ...by("normalizer"), ...rev(4) },
        { ...base, status: { S: "active" }, ...by("sweep"), ...rev(5) },
      ),
    ).toBe(MIGRATOR_ACTORS.sweep);
  });

  it("never attributes an application write to the migrator", () => {
    const migrated = { ...base, full_name: { S: "Ada" }, ...by("normalizer"), ...rev(2) };
    // An update of business fields: the revision is untouched.
    expect(attribute(migrated, { ...migrated, fullName: { S: "Ada K" }, version: { N: "4" } })).toBeUndefined();
    // A full put by old code: snake_case copies and the marker dropped.
    expect(attribute(migrated, { ...base, version: { N: "4" } })).toBeUndefined();
    // A stale read-modify-write put carrying an older marker.
    expect(attribute({ ...migrated, ...rev(3) }, { ...migrated, version: { N: "4" }, ...rev(2) })).toBeUndefined();
    // A write that raises the revision but also changes a business field is not the migrator's.
    expect(attribute(migrated, { ...migrated, ...rev(3), version: { N: "4" } })).toBeUndefined();
    // Raising the revision by more than one, or naming an unknown writer.
    expect(attribute(migrated, { ...migrated, ...rev(4) })).toBeUndefined();
    expect(attribute(migrated, { ...migrated, ...rev(3), _migratedBy: { S: "someone" } })).toBeUndefined();
  });
});

describe("migrator attribution: bookkeeping attributes", () => {
  it(
    "accepts every attribute of MIGRATOR_MARKER beside the targets in a migrator write, whatever " + "the marker holds",
    () => {
      const base: AttributeMap = {
        PK: { S: "PERSON#e1" },
        SK: { S: "PROFILE" },
        fullName: { S: "Ada" },
        _migrationRev: { N: "1" },
      };
      const bookkeeping = Object.fromEntries(Object.values(MIGRATOR_MARKER).map((name) => [name, { S: "x" }]));
      const written = {
        ...base,
        ...bookkeeping,
        full_name: { S: "Ada" },
        [MIGRATOR_MARKER.by]: { S: MIGRATOR_ACTORS.sweep },
        [MIGRATOR_MARKER.rev]: { N: "2" },
      };
      const changed = ["full_name", ...Object.values(MIGRATOR_MARKER)];
      expect(migratorActor("personnel", base, written, changed)).toBe(MIGRATOR_ACTORS.sweep);
      expect(
        migratorActor("personnel", base, { ...written, version: { N: "9" } }, [...changed, "version"]),
      ).toBeUndefined();
    },
  );
});

describe("entry fields: one declaration for the hash, the stored item, decoding and output", () => {
  const person2 = { ...person, photo: { B: new Uint8Array([1, 2, 3]) }, big: { N: "123456789012345678901234567890" } };
  const content = entryContent(
    record("MODIFY", { old: person2, new: { ...person2, fullName: { S: "Ada King" }, tags: { SS: ["a", "b"] } } }),
    names,
  );
  const placed: Omit<AuditEntry, "hash"> = {
    ...content,
    position: 3,
    prevHash: "a".repeat(64),
    recordedAt: "2025-11-24T00:00:00.000Z",
    expiresAt: 1_985_000_000,
    prevExpiresAt: 1_984_000_000,
  };
  const full: AuditEntry = { ...placed, hash: entryHash(placed) };

  /** Another value of the same shape, whatever the field. */
  function changedValue(value: unknown): unknown {
    if (typeof value === "string") return `${value}x`;
    if (typeof value === "number") return value + 1;
    if (Array.isArray(value)) return [...value, "x"];
    if (value && typeof value === "object") {
      const strings = Object.values(value).every((v) => typeof v === "string");
      return { ...value, zz: strings ? "z" : { S: "z" } };
    }
    throw new Error(`no changed value for ${String(value)}: teach this test the new field's type`);
  }

  it("declares exactly the fields an entry has (the full entry below sets every one)", () => {
    expect(Object.keys(ENTRY_FIELDS).sort()).toEqual(Object.keys(full).sort());
  });

  it("hashes every field but the hash itself and the entity: changing or dropping any other changes the hash", () => {
    const unhashed = Object.entries(ENTRY_FIELDS)
      .filter(([, field]) => !field.hash)
      .map(([name]) => name);
    // `entity` is a function of table and keys, which verification checks against the key the entry is stored under.
    expect(unhashed.sort()).toEqual(["entity", "hash"]);
    const hash = entryHash(full);
    for (const name of Object.keys(ENTRY_FIELDS) as (keyof AuditEntry)[]) {
      if (unhashed.includes(name)) continue;
      expect(entryHash({ ...full, [name]: changedValue(full[name]) }), `${name} changed`).not.toBe(hash);
      const { [name]: _, ...without } = full;
      expect(entryHash(without as AuditEntry), `${name} absent`).not.toBe(hash);
    }
  });

  it("stores and reads back every field, inline, compressed and chunked", () => {
    const large = (bytes: number): AuditEntry => {
      const big = { ...full, new: { ...full.new, blob: { S: randomText(bytes) } } };
      const { hash: _, ...rest } = big;
      return { ...big, hash: entryHash(rest) };
    };
    const storages = new Set<string>();
    for (const entry of [full, large(400_000), large(900_000)]) {
      const stored = storedEntry(entry);
      storages.add(stored.storage);
      const chunks = stored.chunks.map((c) => c.data!.B!);
      expect(decodeEntry({ item: stored.item, chunks })).toEqual(entry);
    }
    expect([...storages].sort()).toEqual(["chunked", "compressed", "inline"]);
  });

  it("shows in JSON exactly the fields declared for output, in the declared order", () => {
    const shown = Object.entries(ENTRY_FIELDS)
      .filter(([, field]) => field.json)
      .map(([name]) => name);
    expect(Object.keys(entryJson(full))).toEqual(shown);
    expect(entryJson(full).expiresAt).toBe(new Date(1_985_000_000 * 1000).toISOString());
  });
});

/** Text that gzip cannot shrink much (hex of random bytes compresses to about half). */
function randomText(chars: number): string {
  return Array.from({ length: Math.ceil(chars / 16) }, () => Math.random().toString(16).slice(2, 18).padEnd(16, "0"))
    .join("")
    .slice(0, chars);
}

describe("retention and time bounds", () => {
  it("defaults to 7 years, takes whole years or forever, refuses anything else", () => {
    expect(retentionFromEnv({})).toEqual({ years: 7 });
    expect(retentionFromEnv({ SITELOGIX_AUDIT_RETENTION_YEARS: "10" })).toEqual({ years: 10 });
    expect(retentionFromEnv({ SITELOGIX_AUDIT_RETENTION_YEARS: "forever" })).toBe("forever");
    for (const bad of ["0", "7.5", "-1", "seven"])
      expect(() => retentionFromEnv({ SITELOGIX_AUDIT_RETENTION_YEARS: bad })).toThrow(/whole number of years/);
  });

  it("reads a bare date as the whole UTC day and refuses what is not a date", () => {
    expect(parseAuditTime("2025-11-01", "from")).toBe("2025-11-01T00:00:00.000Z");
    expect(parseAuditTime("2025-11-01", "to")).toBe("2025-11-01T23:59:59.999Z");
    expect(parseAuditTime("2025-11-01T08:30:00+02:00", "to")).toBe("2025-11-01T06:30:00.000Z");
    expect(() => parseAuditTime("yesterday", "from")).toThrow(/--from must be an ISO date/);
  });
});

/** Minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += c;
  }
  return rows;
}

describe("output formats", () => {
  const entry: AuditEntry = {
    ...entryContent(
      record("MODIFY", {
        old: { ...person, note: { S: 'said "hi",\nthen left' } },
        new: { ...person, note: { S: "x" }, big: { N: "123456789012345678901234567890" } },
      }),
      names,
    ),
    position: 1,
    prevHash: GENESIS_HASH,
    recordedAt: "2025-11-24T00:00:00.000Z",
    hash: "h",
  };
  const text = async (format: "json" | "ndjson" | "csv" | "table", entries: AuditEntry[]) => {
    let out = "";
    for await (const chunk of formatEntries(
      (async function* () {
        yield* entries;
      })(),
      format,
    ))
      out += chunk;
    return out;
  };

  it("writes json as one array (empty too), ndjson one entry per line, numbers exact", async () => {
    expect(JSON.parse(await text("json", []))).toEqual([]);
    const json = JSON.parse(await text("json", [entry, entry]));
    expect(json).toHaveLength(2);
    expect(json[0]).toMatchObject({
      table: "personnel",
      keys: { PK: "PERSON#e1", SK: "PROFILE" },
      eventName: "MODIFY",
      changed: ["big", "note"],
      old: { note: 'said "hi",\nthen left' },
      new: { big: "123456789012345678901234567890", note: "x" },
    });
    const lines = (await text("ndjson", [entry, entry])).trimEnd().split("\n");
    expect(lines.map((l) => JSON.parse(l).eventId)).toEqual(["ev-1", "ev-1"]);
  });

  it("writes RFC 4180 CSV that parses back to the entry's fields", async () => {
    const tricky = { ...entry, actor: 'Smith, "J"\nnight shift' };
    const csv = await text("csv", [tricky]);
    expect(csv.endsWith("\r\n")).toBe(true);
    const [header, row] = parseCsv(csv);
    expect(header).toEqual([
      "at",
      "table",
      "keys",
      "eventName",
      "actor",
      "actorBasis",
      "changed",
      "old",
      "new",
      "sequenceNumber",
      "eventId",
      "position",
      "hash",
      "prevHash",
    ]);
    const field = (name: string) => row![header!.indexOf(name)]!;
    expect(field("actor")).toBe('Smith, "J"\nnight shift');
    expect(JSON.parse(field("keys"))).toEqual({ PK: "PERSON#e1", SK: "PROFILE" });
    expect(JSON.parse(field("old"))).toEqual({ note: 'said "hi",\nthen left' });
    expect(field("changed")).toBe("big note");
  });

  it("shows attribute names, never values, in the table format", async () => {
    const table = await text("table", [entry]);
    expect(table).toContain("note");
    expect(table).not.toContain("hi");
  });
});
