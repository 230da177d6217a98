// The tables, declared from the core schema (the one description of keys and GSIs), as plain
// `aws.dynamodb.Table` resources: a stage that adopts production's existing tables imports them into
// state under their own names (never creates them), and the index phase still adds GSIs as code.
import { attributeDefinitions, gsisIn, SITELOGIX_TABLES, TABLES, type LogicalTable, type SiteLogixTable } from "@sitelogix/core/schema";
import type { StageContext } from "./config";

export interface DeclaredTable {
  logical: LogicalTable;
  /** Physical table name. */
  name: string;
  /** `Resource.<linkName>` under `sst shell` and in the functions; also names the Pulumi resources. */
  linkName: string;
  table: aws.dynamodb.Table;
  /** Carries only the physical name (`Resource.<linkName>.name`); permissions are granted explicitly. */
  link: sst.Linkable<{ name: $util.Output<string> }>;
}

/** Long enough for a GSI backfill on a large table: the deploy waits until the index is ACTIVE. */
const INDEX_BUILD_TIMEOUT = "12h";

export function declareTable(logical: LogicalTable, ctx: StageContext): DeclaredTable {
  const def = TABLES[logical];
  const name = ctx.names[logical];
  const adopted = ctx.adopt && def.existing;
  const tags = { "sitelogix:table": logical, "sitelogix:managed-by": "sitelogix-migrator" };
  const table = new aws.dynamodb.Table(
    `${def.linkName}Table`,
    {
      name,
      billingMode: "PAY_PER_REQUEST",
      hashKey: def.hashKey,
      rangeKey: def.rangeKey,
      attributes: Object.entries(attributeDefinitions(logical, ctx.phase)).map(([attribute, type]) => ({ name: attribute, type })),
      globalSecondaryIndexes: gsisIn(logical, ctx.phase).map((g) => ({
        name: g.name,
        hashKey: g.hashKey,
        rangeKey: g.rangeKey,
        projectionType: "ALL",
      })),
      streamEnabled: def.streamView !== undefined,
      streamViewType: def.streamView,
      pointInTimeRecovery: { enabled: true },
      // A KMS key instead of the AWS-owned default: key use is visible in CloudTrail. Without a key
      // ARN an existing customer-managed key is kept, so adoption never downgrades encryption.
      serverSideEncryption: { enabled: true },
      ttl: def.ttlAttribute ? { attributeName: def.ttlAttribute, enabled: true } : undefined,
      deletionProtectionEnabled: ctx.protect,
      // SST ignores tag changes on imported resources; adopted tables get theirs added below instead.
      tags: adopted ? undefined : tags,
    },
    {
      import: adopted ? name : undefined,
      protect: ctx.protect,
      customTimeouts: { create: "1h", update: INDEX_BUILD_TIMEOUT },
    },
  );
  if (adopted) {
    // One resource per tag: adds ours, leaves the tags the application team put on the table alone.
    for (const [key, value] of Object.entries(tags)) {
      new aws.dynamodb.Tag(`${def.linkName}Tag${key.replace(/[^a-zA-Z0-9]/g, "")}`, { resourceArn: table.arn, key, value });
    }
  }
  const link = new sst.Linkable(def.linkName, { properties: { name: table.name } });
  return { logical, name, linkName: def.linkName, table, link };
}

/** The six SiteLogix tables and the migration ledger. */
export function tables(ctx: StageContext): Record<SiteLogixTable | "ledger", DeclaredTable> {
  const logicals = [...SITELOGIX_TABLES, "ledger" as const];
  return Object.fromEntries(logicals.map((logical) => [logical, declareTable(logical, ctx)])) as Record<SiteLogixTable | "ledger", DeclaredTable>;
}
