// SDK clients. Endpoints follow the SDK's own variables (AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_DYNAMODB_STREAMS, AWS_ENDPOINT_URL) and region AWS_REGION: nothing here knows
// whether it talks to AWS or DynamoDB Local.
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient, type DynamoDBStreamsClientConfig } from "@aws-sdk/client-dynamodb-streams";
import { DynamoDBDocumentClient, NumberValue } from "@aws-sdk/lib-dynamodb";

export interface Clients {
  dynamodb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  streams: DynamoDBStreamsClient;
}

export function createClients(config: DynamoDBClientConfig = {}): Clients {
  // Standard retry mode: exponential backoff with jitter on throttling and 5xx, token-bucket limited;
  // more attempts than the SDK's 3 unless AWS_MAX_ATTEMPTS says otherwise.
  const base = { ...(process.env.AWS_MAX_ATTEMPTS ? {} : { maxAttempts: 8 }), retryMode: "standard", ...config };
  const dynamodb = new DynamoDBClient(base);
  const doc = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
    unmarshallOptions: { wrapNumbers: exactNumber },
  });
  const streams = new DynamoDBStreamsClient(base as DynamoDBStreamsClientConfig);
  return { dynamodb, doc, streams };
}

/**
 * A number as a plain JS number when that is exact, else wrapped (NumberValue): reading an item never
 * fails or rounds on a 20-digit number, and ordinary counts stay ordinary numbers.
 */
export function exactNumber(value: string): number | NumberValue {
  const n = Number(value);
  return String(n) === value ? n : NumberValue.from(value);
}

export function destroyClients(clients: Clients): void {
  clients.doc.destroy();
  clients.dynamodb.destroy();
  clients.streams.destroy();
}
