// What a phase's plan reads from the account (or a DynamoDB Local): live table descriptions, who
// manages their keys, and each table's index gate in the ledger.
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import { DescribeKeyCommand, type KMSClient } from "@aws-sdk/client-kms";
import type { KeyManager } from "../adoption.js";
import type { Clients } from "../clients.js";
import { type IndexGateDecision, Ledger } from "../ledger/index.js";
import type { LogicalTable } from "../schema.js";
import type { TableNames } from "../names.js";
import { describeTable } from "../tables.js";

export interface LiveTables {
  /** The live table, or undefined when it does not exist. */
  describe(tableName: string): Promise<TableDescription | undefined>;
  /** KMS DescribeKey's KeyManager for a table's key. */
  keyManager(keyArn: string): Promise<KeyManager>;
  indexGate(table: LogicalTable): Promise<IndexGateDecision>;
  close(): void;
}

/**
 * The live tables behind `clients`. Without a KMS client (DynamoDB Local, the rehearsal) a table
 * encrypted with a key of its own is reported as customer-managed, the answer that keeps access to it.
 */
export function liveTablesOf(
  names: TableNames,
  clients: Clients,
  kms?: KMSClient,
  close: () => void = () => {},
): LiveTables {
  const ledger = new Ledger(clients.doc, names.ledger);
  return {
    describe: (tableName) => describeTable(clients.dynamodb, tableName),
    async keyManager(keyArn) {
      if (!kms) return "CUSTOMER";
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
    close,
  };
}
