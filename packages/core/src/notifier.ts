// Phase events to the stage's alarm topic, like gh-ost's hooks: a gate turning green or red, a sweep
// finishing, failing or stopping, an index becoming ACTIVE. The topic is the one the alarms notify
// (its ARN is the `Migrator` link under `sst shell`, or SITELOGIX_NOTIFY_TOPIC_ARN); without one,
// notifying does nothing. A notification never fails the step it reports: its error is returned.
import { PublishCommand, SNSClient, type SNSClientConfig } from "@aws-sdk/client-sns";
import { migratorLink } from "./stage.js";
import { describeError } from "./errors.js";

export type PhaseEventKind =
  | "gate-green"
  | "gate-red"
  | "sweep-finished"
  | "sweep-failed"
  | "sweep-stopped"
  | "index-active"
  | "index-deleted";

export interface PhaseEvent {
  kind: PhaseEventKind;
  /** One line: what happened, to what (e.g. `sweep finished: reports`). */
  summary: string;
  /** Details for the reader (counts, reasons, the next step); keys and names, never item values. */
  details?: string[];
}

export interface NotifyResult {
  sent: boolean;
  error?: string;
}

/** SNS subjects: at most 100 printable ASCII characters. */
const subjectOf = (text: string) => text.replace(/[^\x20-\x7e]/g, "?").slice(0, 100);

export class Notifier {
  constructor(
    private readonly topicArn: string | undefined,
    private readonly sns?: SNSClient,
    /** Named in every subject, so that one inbox can follow several stages. */
    private readonly label = "sitelogix-migrator",
  ) {}

  get enabled(): boolean {
    return this.topicArn !== undefined;
  }

  async notify(event: PhaseEvent): Promise<NotifyResult> {
    if (!this.topicArn || !this.sns) return { sent: false };
    try {
      await this.sns.send(
        new PublishCommand({
          TopicArn: this.topicArn,
          Subject: subjectOf(`[${this.label}] ${event.summary}`),
          Message: [event.summary, ...(event.details ?? [])].join("\n"),
          MessageAttributes: { event: { DataType: "String", StringValue: event.kind } },
        }),
      );
      return { sent: true };
    } catch (err) {
      return { sent: false, error: describeError(err) };
    }
  }

  close(): void {
    this.sns?.destroy();
  }
}

/** The notifier of the stage this process acts on: the link's topic, else SITELOGIX_NOTIFY_TOPIC_ARN, else none. */
export function stageNotifier(env: NodeJS.ProcessEnv = process.env, config: SNSClientConfig = {}): Notifier {
  const link = migratorLink();
  const topicArn = link?.topicArn || env.SITELOGIX_NOTIFY_TOPIC_ARN || undefined;
  return new Notifier(
    topicArn,
    topicArn ? new SNSClient(config) : undefined,
    link ? `sitelogix-migrator ${link.stage}` : undefined,
  );
}
