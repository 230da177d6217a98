// The rehearsal's report: one row per phase (result, duration, what it did), the failed checks with
// their reasons, and the details an operator reads before touching production.

export interface PhaseResult {
  phase: string;
  ok: boolean;
  durationMs: number;
  /** One line: what the phase did, in counts. */
  summary: string;
  /** Why the phase failed (set when ok is false). */
  failure?: string;
  /** Markdown lines shown under the phase's heading. */
  details?: string[];
}

export interface RehearsalReport {
  startedAt: string;
  items: number;
  endpoint: string;
  phases: PhaseResult[];
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export const reportPassed = (report: RehearsalReport) => report.phases.length > 0 && report.phases.every((p) => p.ok);

export function renderMarkdown(report: RehearsalReport): string {
  const passed = reportPassed(report);
  const lines = [
    "# SiteLogix migration rehearsal",
    "",
    `Started ${report.startedAt} on DynamoDB Local (${report.endpoint}) with ${report.items} sample items.`,
    "",
    `**Result: ${passed ? "every check passed" : "FAILED"}**`,
    "",
    "| phase | result | duration | summary |",
    "|---|---|---|---|",
    ...report.phases.map(
      (p) => `| ${cell(p.phase)} | ${p.ok ? "ok" : "FAILED"} | ${seconds(p.durationMs)} | ${cell(p.summary)} |`,
    ),
  ];
  const failed = report.phases.filter((p) => !p.ok);
  if (failed.length > 0)
    lines.push("", "## Failed checks", "", ...failed.map((p) => `- **${p.phase}**: ${p.failure ?? "failed"}`));
  for (const p of report.phases.filter((x) => x.details?.length)) lines.push("", `## ${p.phase}`, "", ...p.details!);
  return `${lines.join("\n")}\n`;
}

/** The phase table for a terminal. */
export function renderTable(report: RehearsalReport): string {
  const width = Math.max(...report.phases.map((p) => p.phase.length), 5);
  const rows = report.phases.map((p) => {
    const result = (p.ok ? "ok" : "FAILED").padEnd(6);
    return `${p.phase.padEnd(width)}  ${result}  ${seconds(p.durationMs).padStart(8)}  ${p.summary}`;
  });
  return [`${"phase".padEnd(width)}  result  duration  summary`, ...rows].join("\n");
}
