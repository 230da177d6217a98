// The deploy check runs core's phase plan (packages/core/src/phases/plan.ts) with the deployer's
// credentials, which the SST CLI hands the program as SST_AWS_* variables.
import { KMSClient } from "@aws-sdk/client-kms";
import { type Clients, createClients, destroyClients } from "@sitelogix/core/clients";
import type { TableNames } from "@sitelogix/core/names";
import { type LiveTables, liveTablesOf } from "@sitelogix/core/phases";

export {
  type DeployPlan,
  DeployRefusedError,
  type LiveTables,
  type PlannedIndexChange,
  planDeploy,
} from "@sitelogix/core/phases";

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

/** The live tables of an account (or a DynamoDB Local), read through core with the deployer's rights. */
export function awsLiveTables(
  names: TableNames,
  clients: Clients = deployerClients(),
  kms = new KMSClient(deployerConfig()),
): LiveTables {
  return liveTablesOf(names, clients, kms, () => {
    destroyClients(clients);
    kms.destroy();
  });
}
