// What a deploy would do to the live tables, and whether it may. Runs before any resource is
// declared, against the live tables and the ledger, with the deployer's credentials, so `sst diff`
// and `sst deploy` both refuse a phase whose preconditions do not hold:
//   - every live table is compared in full with its declaration (core's liveTableProblems): a
//     difference the deploy would change in place, re-create or replace is refused, with what to do;
//   - a target GSI is built on a live table only when that table's index gate is green (ledger);
//   - at most one GSI is created or deleted per table per deploy (DynamoDB's limit per UpdateTable);
//   - an adopted table must exist (it is imported, never created).
// What it reads that the declaration follows: each live table's encryption (an adopted table keeps
// its key; the functions get kms:Decrypt on a customer-managed one).
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import { DescribeKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { liveEncryption, liveTableProblems, type KeyManager, type LiveEncryption } from "@sitelogix/core/adoption";
import { createClients, destroyClients, type Clients } from "@sitelogix/core/clients";
import { indexChanges, type IndexChange } from "@sitelogix/core/indexes";
import { Ledger, type IndexGateDecision } from "@sitelogix/core/ledger";
import type { TableNames } from "@sitelogix/core/names";
import { tablesIn, type LogicalTable, type Phase } from "@sitelogix/core/schema";
import { describeTable } from "@sitelogix/core/tables";

/** What the plan reads from the account: live table descriptions, their keys' managers, index gates. */
export interface LiveTables {
  /** The live table, or undefined when it does not exist. */
  describe(tableName: string): Promise<TableDescription | undefined>;
  /** KMS DescribeKey's KeyManager for a table's key. */
  keyManager(keyArn: string): Promise<KeyManager>;
  indexGate(table: LogicalTable): Promise<IndexGateDecision>;
  close(): void;
}

/** A GSI the deploy creates or deletes on a live table. */
export interface PlannedIndexChange extends IndexChange {
  tableName: string;
}

export interface DeployPlan {
  phase: Phase;
  /** Tables the deploy creates (they hold no items, so their GSIs are created with them). */
  newTables: string[];
  indexChanges: PlannedIndexChange[];
  /** What the declaration of each live table takes over from it. */
  live: Partial<Record<LogicalTable, { encryption: LiveEncryption }>>;
}

export class DeployRefusedError extends Error {
  constructor(
    readonly phase: Phase,
    readonly problems: string[],
  ) {
    super(`deploy of phase "${phase}" refused:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "DeployRefusedError";
  }
}

/**
 * What deploying `phase` does to the live tables. Throws DeployRefusedError naming every problem
 * (not just the first) when the deploy must not go ahead.
 */
export async function planDeploy(input: {
  phase: Phase;
  names: TableNames;
  adopt: boolean;
  live: LiveTables;
}): Promise<DeployPlan> {
  const { phase, names, adopt, live } = input;
  const plan: DeployPlan = { phase, newTables: [], indexChanges: [], live: {} };
  const problems: string[] = [];
  for (const def of tablesIn(phase)) {
    const tableName = names[def.logical];
    const described = await live.describe(tableName);
    if (!described) {
      if (adopt && def.existing)
        problems.push(`${tableName} does not exist: this stage adopts the existing table and never creates it`);
      else plan.newTables.push(tableName);
      continue;
    }
    problems.push(...liveTableProblems(def.logical, phase, { ...described, TableName: tableName }));
    plan.live[def.logical] = { encryption: await liveEncryption(described, (arn) => live.keyManager(arn)) };

    const liveGsis = described.GlobalSecondaryIndexes ?? [];
    const changes = indexChanges(
      def.logical,
      liveGsis.map((g) => g.IndexName ?? ""),
      phase,
    );
    const creates = changes.filter((c) => c.action === "create").map((c) => c.index);
    if (changes.length > 1) {
      const listed = changes.map((c) => `${c.action} ${c.index}`).join(", ");
      problems.push(
        `${tableName} would need ${changes.length} index changes in one deploy (${listed}); DynamoDB makes one per update: deploy the phases in order`,
      );
    }
    if (creates.length > 0) {
      const busy = liveGsis.filter((g) => g.IndexStatus !== "ACTIVE");
      for (const g of busy)
        problems.push(`${tableName}: GSI ${g.IndexName} is ${g.IndexStatus}; wait until it is ACTIVE`);
      const gate = await live.indexGate(def.logical);
      if (!gate.allowed) {
        problems.push(
          `${tableName}: the index gate is closed, so ${creates.join(", ")} cannot be built: ${gate.reasons.join("; ")}`,
        );
      }
    }
    plan.indexChanges.push(...changes.map((change) => ({ ...change, tableName })));
  }
  if (problems.length > 0) throw new DeployRefusedError(phase, problems);
  return plan;
}

/** The SST CLI hands the program the deployer's credentials and region as SST_AWS_* variables. */
export function deployerConfig(env: NodeJS.ProcessEnv = process.env) {
  return {
    ...(env.SST_AWS_REGION ? { region: env.SST_AWS_REGION } : {}),
    ...(env.SST_AWS_ACCESS_KEY_ID && env.SST_AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.SST_AWS_ACCESS_KEY_ID,
            secretAccessKey: env.SST_AWS_SECRET_ACCESS_KEY,
            ...(env.SST_AWS_SESSION_TOKEN ? { sessionToken: env.SST_AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
  };
}

export function deployerClients(env: NodeJS.ProcessEnv = process.env): Clients {
  return createClients(deployerConfig(env));
}

/** The live tables of an account (or a DynamoDB Local), read through core. */
export function awsLiveTables(
  names: TableNames,
  clients: Clients = deployerClients(),
  kms = new KMSClient(deployerConfig()),
): LiveTables {
  const ledger = new Ledger(clients.doc, names.ledger);
  return {
    describe: (tableName) => describeTable(clients.dynamodb, tableName),
    async keyManager(keyArn) {
      const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyArn }));
      return KeyMetadata?.KeyManager === "CUSTOMER" ? "CUSTOMER" : "AWS";
    },
    async indexGate(table) {
      if (!(await describeTable(clients.dynamodb, names.ledger))) {
        return {
          table,
          allowed: false,
          reasons: [`the ledger table ${names.ledger} does not exist (deploy the expand phase first)`],
        };
      }
      return ledger.indexGate(table);
    },
    close: () => {
      destroyClients(clients);
      kms.destroy();
    },
  };
}
