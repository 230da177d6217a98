// From a stream record to the content of its audit entry: the item, the change and who made it.
import type { DynamoDBRecord } from "aws-lambda";
import { logicalFromPhysical, type TableNames } from "../names.js";
import { malformedRecord, recordEnvelope, recordRef } from "../streams.js";
import { applicationActor, migratorActor, serviceActor } from "./attribution.js";
import { entityId, orderKeys, type EntryContent } from "./entry.js";
import { keyString, MalformedImage, normalizeImage, sameValue, type AttributeMap, type RawImage } from "./values.js";

/** Names whose values differ between two images (added, removed or changed), sorted. */
export function changedAttributes(oldImage: AttributeMap, newImage: AttributeMap): string[] {
  const names = new Set([...Object.keys(oldImage), ...Object.keys(newImage)]);
  return [...names].filter((n) => !sameValue(oldImage[n], newImage[n])).sort();
}

const pick = (image: AttributeMap, names: readonly string[]) =>
  Object.fromEntries(names.filter((n) => image[n] !== undefined).map((n) => [n, image[n]!]));

/** The item a record is about, as far as it can be read (also from a record that is otherwise malformed). */
export function recordEntity(record: DynamoDBRecord, names: TableNames): string | undefined {
  const { tableName, keys } = recordRef(record);
  return tableName && Object.keys(keys).length > 0
    ? entityId(logicalFromPhysical(names, tableName) ?? tableName, keys)
    : undefined;
}

/**
 * The entry content of a stream record. Throws MalformedRecordError (naming attributes, never
 * values) for a record that cannot be audited faithfully: it must fail, be retried and end on the
 * on-failure destination rather than produce a wrong entry.
 */
export function entryContent(record: DynamoDBRecord, names: TableNames): EntryContent {
  const { tableName, eventName, eventId, sequenceNumber, approximateCreationTime: at } = recordEnvelope(record);
  const fail = (why: string) => malformedRecord(record, why);
  // Entries are keyed and ordered by the sequence number padded to 40 digits (store.ts).
  if (!/^\d{1,40}$/.test(sequenceNumber)) return fail("SequenceNumber is not 1 to 40 digits");
  const table = logicalFromPhysical(names, tableName) ?? tableName;
  try {
    const rawKeys = record.dynamodb?.Keys as RawImage | undefined;
    if (!rawKeys || Object.keys(rawKeys).length === 0) return fail("no Keys");
    const keys = orderKeys(
      table,
      Object.fromEntries(Object.entries(normalizeImage(rawKeys)).map(([name, v]) => [name, keyString(v, name)])),
    );
    const newImage = record.dynamodb?.NewImage ? normalizeImage(record.dynamodb.NewImage as RawImage) : undefined;
    const oldImage = record.dynamodb?.OldImage ? normalizeImage(record.dynamodb.OldImage as RawImage) : undefined;
    const base = { entity: entityId(table, keys), table, tableName, keys, eventName, eventId, sequenceNumber, at };

    if (eventName === "INSERT") {
      if (!newImage) return fail("INSERT without NewImage (the stream must be NEW_AND_OLD_IMAGES)");
      return { ...base, ...applicationActor(newImage, "new"), changed: Object.keys(newImage).sort(), new: newImage };
    }
    if (eventName === "REMOVE") {
      if (!oldImage) return fail("REMOVE without OldImage (the stream must be NEW_AND_OLD_IMAGES)");
      return {
        ...base,
        ...(serviceActor(record.userIdentity) ?? applicationActor(oldImage, "old")),
        changed: Object.keys(oldImage).sort(),
        old: oldImage,
      };
    }
    if (!oldImage || !newImage) return fail("MODIFY without both images (the stream must be NEW_AND_OLD_IMAGES)");
    const changed = changedAttributes(oldImage, newImage);
    const migrator = migratorActor(table, oldImage, newImage, changed);
    return {
      ...base,
      ...(migrator ? { actor: migrator, actorBasis: "migrator" as const } : applicationActor(newImage, "new")),
      changed,
      old: pick(oldImage, changed),
      new: pick(newImage, changed),
    };
  } catch (err) {
    if (err instanceof MalformedImage) return fail(err.message);
    throw err;
  }
}
