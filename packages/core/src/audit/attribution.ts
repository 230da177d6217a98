// Who made a change: the application user the item names, the migrator (recognised from its
// bookkeeping attributes, never from what it claims alone), or DynamoDB itself (TTL expiry).
import { MIGRATOR_ACTORS, MIGRATOR_MARKER } from "../applier.js";
import { targetAttributes } from "../rules.js";
import { isSiteLogixTable } from "../schema.js";
import { userIdentityOf } from "../streams.js";
import type { AttributeMap } from "./values.js";

/** How the actor of an entry was established. */
export type ActorBasis =
  | "new:lastModifiedBy"
  | "new:updatedBy"
  | "old:lastModifiedBy"
  | "old:updatedBy"
  | "migrator"
  | "service"
  | "none";

export const UNKNOWN_ACTOR = "unknown";
/** The principal DynamoDB names in the userIdentity of a TTL deletion. */
export const TTL_PRINCIPAL = "dynamodb.amazonaws.com";

export interface Attribution {
  actor: string;
  actorBasis: ActorBasis;
}

function stringAttr(image: AttributeMap | undefined, name: string): string | undefined {
  const v = image?.[name]?.S;
  return v !== undefined && v !== "" ? v : undefined;
}

const revision = (image: AttributeMap): bigint | undefined => {
  const av = image[MIGRATOR_MARKER.rev];
  if (av === undefined) return 0n;
  if (av.N === undefined || !/^\d+$/.test(av.N)) return undefined;
  return BigInt(av.N);
};

/**
 * The migrator's actor name when a MODIFY is one of its writes, else undefined. A migrator write is
 * one conditional UpdateItem that sets only target attributes and its bookkeeping attributes
 * (MIGRATOR_MARKER, whatever they are) and adds exactly 1 to the revision: so the record's revision
 * goes up by exactly one, every changed attribute is a target or bookkeeping, and the writer named
 * is a migrator writer. Application writes never raise the revision (an update does not touch it, a
 * full put drops it or carries a value read earlier).
 */
export function migratorActor(
  table: string,
  oldImage: AttributeMap,
  newImage: AttributeMap,
  changed: readonly string[],
): string | undefined {
  const before = revision(oldImage);
  const after = revision(newImage);
  if (before === undefined || after === undefined || after !== before + 1n) return undefined;
  const by = stringAttr(newImage, MIGRATOR_MARKER.by);
  if (!by || !(Object.values(MIGRATOR_ACTORS) as string[]).includes(by)) return undefined;
  const allowed = new Set<string>([
    ...(isSiteLogixTable(table) ? targetAttributes(table) : []),
    ...Object.values(MIGRATOR_MARKER),
  ]);
  return changed.every((name) => allowed.has(name)) ? by : undefined;
}

/** The application user the image names (lastModifiedBy, else updatedBy), or "unknown". */
export function applicationActor(image: AttributeMap | undefined, side: "new" | "old"): Attribution {
  for (const attribute of ["lastModifiedBy", "updatedBy"] as const) {
    const actor = stringAttr(image, attribute);
    if (actor) return { actor, actorBasis: `${side}:${attribute}` };
  }
  return { actor: UNKNOWN_ACTOR, actorBasis: "none" };
}

/** The service that deleted an item (TTL expiry), from the record's userIdentity in either casing. */
export function serviceActor(userIdentity: unknown): Attribution | undefined {
  const identity = userIdentityOf(userIdentity);
  return identity?.type === "Service" && identity.principalId
    ? { actor: identity.principalId, actorBasis: "service" }
    : undefined;
}
