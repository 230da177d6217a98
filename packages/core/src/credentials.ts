// AWS credentials that stop working during a long run. `sst shell` hands a command fixed session
// credentials that expire (typically after an hour); the SDK renews refreshable ones (SSO, assumed
// roles) 5 minutes before they expire, so credentials seen closer to their expiry than that will
// not be renewed. A long run watches for both: credentials about to expire, and requests refused
// because they already have.
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { isErrorNamed } from "./errors.js";

/**
 * Why a request failed because the process's AWS credentials can no longer sign requests (expired,
 * or their provider could not renew them); undefined for any other error.
 */
export function expiredCredentials(err: unknown): string | undefined {
  if (isErrorNamed(err, "ExpiredTokenException", "ExpiredToken")) return "the AWS credentials expired";
  if (isErrorNamed(err, "CredentialsProviderError", "TokenProviderError"))
    return `the AWS credentials could not be renewed (${(err as Error).message?.split("\n")[0]})`;
  return undefined;
}

/** When the client's current credentials expire; undefined when they do not or it is not known. */
export async function credentialsExpiration(client: Pick<DynamoDBClient, "config">): Promise<Date | undefined> {
  return (await client.config.credentials()).expiration;
}
