// Phase events to SNS (no local engine: aws-sdk-client-mock): what is published, that nothing is
// without a topic, that a failed publish is reported rather than thrown, and where the topic comes from.
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { Notifier, regionProblem, stageNotifier } from "@sitelogix/core";

const sns = mockClient(SNSClient);
afterEach(() => sns.reset());

describe("Notifier", () => {
  it(
    "publishes a phase event: " +
      "subject with the stage, the summary and details as the message, the kind as an attribute",
    async () => {
      sns.on(PublishCommand).resolves({ MessageId: "m-1" });
      const notifier = new Notifier(
        "arn:aws:sns:us-east-1:123456789012:ops",
        new SNSClient({ region: "us-east-1" }),
        "sitelogix-migrator prod",
      );
      const result = await notifier.notify({
        kind: "sweep-finished",
        summary: "sweep finished: reports",
        details: ["scanned 10, applied 4", "Next: verify"],
      });
      expect(result).toEqual({ sent: true });
      expect(sns.commandCalls(PublishCommand).map((c) => c.args[0].input)).toEqual([
        {
          TopicArn: "arn:aws:sns:us-east-1:123456789012:ops",
          Subject: "[sitelogix-migrator prod] sweep finished: reports",
          Message: "sweep finished: reports\nscanned 10, applied 4\nNext: verify",
          MessageAttributes: { event: { DataType: "String", StringValue: "sweep-finished" } },
        },
      ]);
      notifier.close();
    },
  );

  it("keeps subjects within SNS's 100 printable ASCII characters", async () => {
    sns.on(PublishCommand).resolves({});
    const notifier = new Notifier("arn:aws:sns:us-east-1:123456789012:ops", new SNSClient({ region: "us-east-1" }));
    await notifier.notify({ kind: "gate-red", summary: `gate red — ${"personnel, ".repeat(20)}` });
    const subject = sns.commandCalls(PublishCommand)[0]!.args[0].input.Subject!;
    expect(subject).toHaveLength(100);
    expect(subject).toMatch(/^\[sitelogix-migrator\] gate red \? personnel, /);
  });

  it("does nothing without a topic, and reports a failed publish instead of throwing", async () => {
    expect(await new Notifier(undefined).notify({ kind: "gate-green", summary: "gate green: reports" })).toEqual({
      sent: false,
    });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    sns.on(PublishCommand).rejects(
      Object.assign(new Error("User is not authorized to perform: SNS:Publish"), {
        name: "AuthorizationErrorException",
      }),
    );
    const notifier = new Notifier("arn:aws:sns:us-east-1:123456789012:ops", new SNSClient({ region: "us-east-1" }));
    expect(
      await notifier.notify({ kind: "index-active", summary: "index ACTIVE: GSI3-StatusIndex on sitelogix-reports" }),
    ).toEqual({
      sent: false,
      error: "AuthorizationErrorException: User is not authorized to perform: SNS:Publish",
    });
  });

  it("takes the topic from SITELOGIX_NOTIFY_TOPIC_ARN outside sst shell, and none when it is unset", async () => {
    sns.on(PublishCommand).resolves({});
    const configured = stageNotifier(
      { SITELOGIX_NOTIFY_TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:ops" },
      { region: "us-east-1" },
    );
    expect(configured.enabled).toBe(true);
    expect(await configured.notify({ kind: "gate-green", summary: "gate green: vendors" })).toEqual({ sent: true });
    configured.close();
    expect(stageNotifier({}).enabled).toBe(false);
  });
});

describe("regionProblem", () => {
  const link = { stage: "prod", region: "us-east-1", topicArn: "" };
  it("accepts the stage's region, refuses another or none, and says nothing outside sst shell", () => {
    expect(regionProblem("us-east-1", link)).toBeUndefined();
    expect(regionProblem("eu-west-1", link)).toMatch(
      /^stage prod is deployed in us-east-1, but the AWS SDK would act in eu-west-1 \(/,
    );
    expect(regionProblem(undefined, link)).toMatch(/would act in no region/);
    expect(regionProblem("eu-west-1", undefined)).toBeUndefined();
  });
});
