// What a deploy would do to a live table beyond what it is meant to do. Pulumi reconciles a live
// table with its declaration: every difference the declaration does not own is changed in place,
// re-created (a GSI) or forces a replacement (refused by `protect`, i.e. a deploy that fails half
// way). Reading DescribeTable first turns each such difference into a refusal that says what the
// deploy would do and what to do instead, before anything is declared.
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import {
  attributeDefinitions,
  gsisIn,
  keySchema,
  TABLES,
  type GsiDef,
  type LogicalTable,
  type Phase,
} from "./schema.js";

/** How a live table is encrypted at rest; an adopted table keeps what it has. */
export type LiveEncryption =
  /** The AWS-owned key (DescribeTable has no SSEDescription): DynamoDB's default. */
  | { kind: "owned" }
  /** The account's AWS-managed `aws/dynamodb` KMS key. */
  | { kind: "aws-managed"; keyArn: string }
  /** A customer-managed KMS key: whoever reads the table or its stream needs kms:Decrypt on it. */
  | { kind: "customer-managed"; keyArn: string };

/** Who manages a KMS key (KMS DescribeKey's KeyManager). */
export type KeyManager = "AWS" | "CUSTOMER";

const keyList = (keys: { AttributeName?: string; KeyType?: string }[] = []) =>
  keys.map((k) => `${k.AttributeName} ${k.KeyType}`).join(", ");
const declaredKeys = (def: { hashKey: string; rangeKey?: string }) => keyList(keySchema(def));

/** The GSI the schema declares under `name` in any phase (the schema's index names are unique per table). */
const knownGsi = (table: LogicalTable, name: string): GsiDef | undefined =>
  TABLES[table].gsis.find((g) => g.name === name);

/** The type the schema gives an attribute in any phase: primary keys per table, every GSI key S. */
function schemaType(table: LogicalTable, attribute: string): "S" | "N" | undefined {
  const def = TABLES[table];
  return (
    def.keyTypes[attribute] ??
    (def.gsis.some((g) => g.hashKey === attribute || g.rangeKey === attribute) ? "S" : undefined)
  );
}

/**
 * Every difference between a live table and what deploying `phase` declares for it that the deploy
 * must not resolve on its own, one line each: what differs, what the deploy would do, what to do.
 * Empty when the deploy only makes the changes it is meant to make (stream on, PITR, deletion
 * protection, tags, the phase's index changes).
 */
export function liveTableProblems(table: LogicalTable, phase: Phase, described: TableDescription): string[] {
  const def = TABLES[table];
  const name = described.TableName ?? def.defaultName;
  const problems: string[] = [];
  const problem = (what: string, consequence: string, todo: string) =>
    problems.push(`${name}: ${what}: ${consequence}. ${todo}`);

  const liveKeys = keyList(described.KeySchema);
  const expectedKeys = declaredKeys(def);
  if (liveKeys !== expectedKeys) {
    problem(
      `key schema is (${liveKeys}), the schema says (${expectedKeys})`,
      "the deploy would replace the table",
      "The table cannot be adopted as it is: check that the right table is named",
    );
  }

  const billing = described.BillingModeSummary?.BillingMode ?? "PROVISIONED";
  if (billing !== "PAY_PER_REQUEST") {
    problem(
      `capacity mode is ${billing}, the stacks declare PAY_PER_REQUEST`,
      "the deploy would switch it",
      "Switch it deliberately first (aws dynamodb update-table --billing-mode PAY_PER_REQUEST), then deploy",
    );
  }

  const declared = attributeDefinitions(table, phase);
  for (const attr of described.AttributeDefinitions ?? []) {
    const expected = declared[attr.AttributeName ?? ""] ?? schemaType(table, attr.AttributeName ?? "");
    if (expected && attr.AttributeType !== expected) {
      problem(
        `key attribute ${attr.AttributeName} is of type ${attr.AttributeType}, the schema declares ${expected}`,
        "the deploy would re-declare its type, which re-creates the indexes keyed on it or fails the update " +
          "(and a target GSI keyed on it could never be built)",
        `Find out with the application team which type ${attr.AttributeName} really holds; ` +
          "the schema (packages/core/src/schema.ts) must match the live table before anything is deployed",
      );
    }
  }

  for (const gsi of described.GlobalSecondaryIndexes ?? []) {
    const known = knownGsi(table, gsi.IndexName ?? "");
    if (!known) {
      problem(
        `has GSI ${gsi.IndexName}, which the schema does not know`,
        "the deploy would delete it",
        "Add it to the schema (packages/core/src/schema.ts) or delete it deliberately first",
      );
      continue;
    }
    const nonKey = gsi.Projection?.NonKeyAttributes?.length ? ` ${gsi.Projection.NonKeyAttributes.join(", ")}` : "";
    const live = `${keyList(gsi.KeySchema)}; ${gsi.Projection?.ProjectionType ?? "?"}${nonKey}`;
    const expected = `${declaredKeys(known)}; ALL`;
    // An index this phase does not declare is deleted anyway (the phase's index change).
    if (live !== expected && gsisIn(table, phase).includes(known)) {
      problem(
        `GSI ${gsi.IndexName} is (${live}), the schema declares (${expected})`,
        "the deploy would delete and re-create it: queries on it fail for the whole backfill",
        "Make the schema (packages/core/src/schema.ts) declare the index as it is live, " +
          "or rebuild the index deliberately first",
      );
    }
  }

  for (const lsi of described.LocalSecondaryIndexes ?? []) {
    problem(
      `has local secondary index ${lsi.IndexName} (${keyList(lsi.KeySchema)})`,
      "the stacks declare no LSI and an LSI exists only from a table's creation, so Pulumi would replace the table " +
        "(refused by protect: the deploy fails half way)",
      "Do not deploy: the LSI must be declared in stacks/tables.ts first",
    );
  }

  for (const replica of described.Replicas ?? []) {
    problem(
      `is a global table with a replica in ${replica.RegionName}`,
      "the stacks declare no replica, so the deploy would delete it",
      "Do not deploy: the replicas must be declared in stacks/tables.ts first",
    );
  }

  const tableClass = described.TableClassSummary?.TableClass ?? "STANDARD";
  if (tableClass !== "STANDARD") {
    problem(
      `is in table class ${tableClass}, the stacks declare STANDARD`,
      "the deploy would switch its class (and its storage and request prices)",
      "Switch it deliberately (aws dynamodb update-table --table-class STANDARD) " +
        "or declare the class in stacks/tables.ts, then deploy",
    );
  }

  const stream = described.StreamSpecification?.StreamEnabled
    ? described.StreamSpecification.StreamViewType
    : undefined;
  if (stream && stream !== def.streamView) {
    const change = def.streamView ? "turn it off and on again with the new view" : "turn it off";
    const needs = def.streamView ? `: the migrator needs ${def.streamView}` : "";
    problem(
      `has a stream of view type ${stream}, the stacks declare ${def.streamView ?? "no stream"}`,
      `the deploy would ${change}: a new stream ARN, and every consumer of the current stream ` +
        `(${described.LatestStreamArn ?? "its ARN"}) stops receiving records`,
      "Agree the change with the owners of its consumers " +
        "(aws lambda list-event-source-mappings --event-source-arn <stream ARN>) " +
        `and make it deliberately first${needs}`,
    );
  }

  const sse = described.SSEDescription;
  if (sse?.InaccessibleEncryptionDateTime) {
    problem(
      `its KMS key has been inaccessible since ${sse.InaccessibleEncryptionDateTime.toISOString()}`,
      "the table cannot be read or updated",
      `Restore access to ${sse.KMSMasterKeyArn ?? "the key"} first`,
    );
  } else if (sse?.Status && sse.Status !== "ENABLED") {
    problem(
      `encryption at rest is ${sse.Status}`,
      "the deploy would race the change in progress",
      "Wait until it is ENABLED, then deploy",
    );
  }
  return problems;
}

/** The live table's encryption; `keyManager` tells an AWS-managed key from a customer-managed one. */
export async function liveEncryption(
  described: TableDescription,
  keyManager: (keyArn: string) => Promise<KeyManager>,
): Promise<LiveEncryption> {
  const keyArn = described.SSEDescription?.SSEType === "KMS" ? described.SSEDescription.KMSMasterKeyArn : undefined;
  if (!keyArn) return { kind: "owned" };
  return (await keyManager(keyArn)) === "CUSTOMER"
    ? { kind: "customer-managed", keyArn }
    : { kind: "aws-managed", keyArn };
}
