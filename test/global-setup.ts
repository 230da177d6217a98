// Starts one DynamoDB Local (in memory, shared database, free port) for the whole run and hands its
// endpoint to every suite through the SDK's own variables. Suites isolate their data by table prefix.
import { startDynamoDbLocal, type DynamoDbLocal } from "@sitelogix/testkit";

let local: DynamoDbLocal | undefined;

export async function setup(): Promise<void> {
  local = await startDynamoDbLocal();
  Object.assign(process.env, local.env);
}

export async function teardown(): Promise<void> {
  await local?.stop();
}
