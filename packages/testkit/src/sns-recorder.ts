// Captures what a CLI process publishes to SNS (no local engine exists for it): an HTTP endpoint for
// AWS_ENDPOINT_URL_SNS that records each Publish request (AWS query protocol) and answers as SNS does.
import { createServer } from "node:http";

export interface Published {
  TopicArn?: string;
  Subject?: string;
  Message?: string;
  /** The `event` message attribute (the phase event's kind). */
  event?: string;
}

export interface SnsRecorder {
  endpoint: string;
  published: Published[];
  close(): Promise<void>;
}

export async function startSnsRecorder(): Promise<SnsRecorder> {
  const published: Published[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const form = new URLSearchParams(body);
      if (form.get("Action") !== "Publish") {
        res
          .writeHead(400, { "content-type": "text/xml" })
          .end("<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>");
        return;
      }
      const attribute = [...form.entries()].find(
        ([k, v]) => /^MessageAttributes\.entry\.\d+\.Name$/.test(k) && v === "event",
      )?.[0];
      const event = attribute ? (form.get(attribute.replace(/Name$/, "Value.StringValue")) ?? undefined) : undefined;
      published.push({
        TopicArn: form.get("TopicArn") ?? undefined,
        Subject: form.get("Subject") ?? undefined,
        Message: form.get("Message") ?? undefined,
        event,
      });
      res.writeHead(200, { "content-type": "text/xml" });
      res.end(
        '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">' +
          `<PublishResult><MessageId>m-${published.length}</MessageId></PublishResult>` +
          "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>",
      );
    });
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no port");
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    published,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
