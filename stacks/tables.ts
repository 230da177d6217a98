// The tables, declared from the core schema (the one description of keys and GSIs), as plain
// `aws.dynamodb.Table` resources: a stage that adopts production's existing tables imports them into
// state under their own names (never creates them), and the index phase still adds GSIs as code.
import type { LiveEncryption } from "@sitelogix/core/adoption";
import {
  attributeDefinitions,
  gsisIn,
  SITELOGIX_TABLES,
  TABLES,
  type GsiDef,
  type LogicalTable,
  type SiteLogixTable,
} from "@sitelogix/core/schema";
import type { StageContext } from "./config";
import type { DeployPlan } from "./deploy-plan";

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

/**
 * A GSI's declaration. Tables whose GSIs are fixed at creation use `keySchemas`. The four existing
 * tables keep the deprecated `hashKey`/`rangeKey` (a warning on every preview): the AWS provider's
 * `keySchemas` support, new in the release line this SST pins, has bugs on exactly what those tables
 * go through — moving a live GSI from hashKey/rangeKey to keySchemas can plan its re-creation
 * (hashicorp/terraform-provider-aws#46512, open: on-demand tables with a range key), and adding or
 * removing one GSI of a table declared with keySchemas re-created its other GSIs (#46601). Either
 * would drop a live index for the whole backfill. Switch them once a provider with both fixed is pinned.
 */
function gsiArgs(logical: LogicalTable, g: GsiDef): aws.types.input.dynamodb.TableGlobalSecondaryIndex {
  if (TABLES[logical].existing)
    return { name: g.name, hashKey: g.hashKey, ...(g.rangeKey ? { rangeKey: g.rangeKey } : {}), projectionType: "ALL" };
  const keys = [
    { attributeName: g.hashKey, keyType: "HASH" },
    ...(g.rangeKey ? [{ attributeName: g.rangeKey, keyType: "RANGE" }] : []),
  ];
  return { name: g.name, keySchemas: keys, projectionType: "ALL" };
}

/**
 * Encryption at rest. A table this app creates gets the AWS-managed KMS key (key use is visible in
 * CloudTrail); an adopted table keeps what it has: the AWS-owned key stays (nothing declared), a
 * KMS key stays by its ARN.
 */
function encryption(live: LiveEncryption | undefined): aws.types.input.dynamodb.TableServerSideEncryption | undefined {
  if (!live) return { enabled: true };
  if (live.kind === "owned") return undefined;
  return live.kind === "customer-managed" ? { enabled: true, kmsKeyArn: live.keyArn } : { enabled: true };
}

export function declareTable(logical: LogicalTable, ctx: StageContext, plan?: Pick<DeployPlan, "live">): DeclaredTable {
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
      attributes: Object.entries(attributeDefinitions(logical, ctx.phase)).map(([attribute, type]) => ({
        name: attribute,
        type,
      })),
      globalSecondaryIndexes: gsisIn(logical, ctx.phase).map((g) => gsiArgs(logical, g)),
      streamEnabled: def.streamView !== undefined,
      streamViewType: def.streamView,
      pointInTimeRecovery: { enabled: true },
      serverSideEncryption: encryption(adopted ? plan?.live[logical]?.encryption : undefined),
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
      new aws.dynamodb.Tag(`${def.linkName}Tag${key.replace(/[^a-zA-Z0-9]/g, "")}`, {
        resourceArn: table.arn,
        key,
        value,
      });
    }
  }
  const link = new sst.Linkable(def.linkName, { properties: { name: table.name } });
  return { logical, name, linkName: def.linkName, table, link };
}

/** The six SiteLogix tables and the migration ledger. */
export function tables(
  ctx: StageContext,
  plan: Pick<DeployPlan, "live">,
): Record<SiteLogixTable | "ledger", DeclaredTable> {
  const logicals = [...SITELOGIX_TABLES, "ledger" as const];
  return Object.fromEntries(logicals.map((logical) => [logical, declareTable(logical, ctx, plan)])) as Record<
    SiteLogixTable | "ledger",
    DeclaredTable
  >;
}
