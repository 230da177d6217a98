// Isolated table sets on the run's DynamoDB Local, one per suite.
import { randomBytes } from "node:crypto";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import {
  createClients,
  defaultTableNames,
  destroyClients,
  ensureTables,
  type Clients,
  type SchemaName,
  type TableNames,
} from "@sitelogix/core";

/** A table-name prefix unique to one suite, so suites never see each other's data. */
export function uniquePrefix(): string {
  return `t${randomBytes(4).toString("hex")}-`;
}

export interface TestTables {
  prefix: string;
  names: TableNames;
  clients: Clients;
  /** Deletes the tables and closes the clients. */
  dispose(): Promise<void>;
}

export async function createTestTables(schema: SchemaName = "legacy"): Promise<TestTables> {
  const prefix = uniquePrefix();
  const names = defaultTableNames(prefix);
  const clients = createClients();
  const created = await ensureTables(clients.dynamodb, names, schema);
  return {
    prefix,
    names,
    clients,
    async dispose() {
      await Promise.all(
        created.map((t) => clients.dynamodb.send(new DeleteTableCommand({ TableName: t.name })).catch(() => undefined)),
      );
      destroyClients(clients);
    },
  };
}
