// `audit seal` on AWS: only the digest writer may sign, so the CLI invokes it. Lambda has no local
// engine: the client is mocked. (sst's own client-lambda is hoisted at another version, so commands are
// matched by their input, not their class.)
import { LambdaClient } from "@aws-sdk/client-lambda";
import {
  digestWriterFromEnvironment,
  DigestWriterError,
  invokeDigestWriter,
  writerSettleSeconds,
} from "@sitelogix/core";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";

const lambda = mockClient(LambdaClient);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

afterEach(() => lambda.reset());

describe("on-demand seal through the digest writer", () => {
  it("invokes the writer synchronously with the settle time and returns the digest it sealed", async () => {
    const sealed = {
      digest: "digest-0000000007.json",
      sequence: 7,
      heads: 12,
      parts: 1,
      range: { from: "2026-12-08T01:00:00.000Z", to: "2026-12-08T02:00:00.000Z" },
      location: "s3://bucket/digests/",
    };
    lambda.onAnyCommand().resolves({ StatusCode: 200, Payload: encode(sealed) as never });
    const result = await invokeDigestWriter("prod-writer", { settleSeconds: 5 }, new LambdaClient({}));
    expect(result).toEqual(sealed);
    const call = lambda.calls()[0]!.args[0].input as {
      FunctionName: string;
      InvocationType: string;
      Payload: Uint8Array;
    };
    expect(call.FunctionName).toBe("prod-writer");
    expect(call.InvocationType).toBe("RequestResponse");
    expect(JSON.parse(new TextDecoder().decode(call.Payload as Uint8Array))).toEqual({ settleSeconds: 5 });
  });

  it("a failed writer is an error naming the function and its error, not a digest", async () => {
    lambda.onAnyCommand().resolves({
      StatusCode: 200,
      FunctionError: "Unhandled",
      Payload: encode({ errorType: "AccessDeniedException", errorMessage: "kms:Sign denied" }) as never,
    });
    const sealing = invokeDigestWriter("prod-writer", {}, new LambdaClient({}));
    await expect(sealing).rejects.toBeInstanceOf(DigestWriterError);
    await expect(sealing).rejects.toThrow(/prod-writer failed \(AccessDeniedException: kms:Sign denied\)/);
  });

  it("the writer is named by SITELOGIX_AUDIT_DIGEST_WRITER; without it (locally) there is none", () => {
    expect(digestWriterFromEnvironment({ env: { SITELOGIX_AUDIT_DIGEST_WRITER: "w" } })).toBe("w");
    expect(digestWriterFromEnvironment({ env: {} })).toBeUndefined();
  });

  it("the writer takes a settle time only from an on-demand event, not from the schedule's", () => {
    expect(writerSettleSeconds({ settleSeconds: 0 })).toBe(0);
    expect(writerSettleSeconds({ settleSeconds: 12 })).toBe(12);
    expect(writerSettleSeconds({ "detail-type": "Scheduled Event", source: "aws.events" })).toBeUndefined();
    expect(writerSettleSeconds({ settleSeconds: -1 })).toBeUndefined();
    expect(writerSettleSeconds(undefined)).toBeUndefined();
  });
});
