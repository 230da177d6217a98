// Progress on stderr: a bar with rate and ETA on a terminal, a plain line every few seconds otherwise
// (logs, CI, `sst shell` piped into a file). stdout stays for `--json`.
import cliProgress from "cli-progress";

export interface Progress {
  /** `done` items of about `total`; `info` is appended (counts, pause, throttling). */
  update(done: number, total: number, info: string): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 10_000;

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
      : `${s}s`;
}

/** A progress display for one task; `startAt` is where a resumed task starts (it does not count toward the rate). */
export function createProgress(label: string, startAt = 0, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = performance.now();
  const rate = (done: number) => (done - startAt) / Math.max((performance.now() - started) / 1000, 0.001);
  const eta = (done: number, total: number) => formatDuration(Math.max(total - done, 0) / Math.max(rate(done), 1e-9));

  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} {bar} {percentage}% | {value}/~{total} | {rate}/s | ETA {etaText} | {info}`,
        hideCursor: true,
        barsize: 25,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, startAt, { rate: 0, etaText: "?", info: "" });
    return {
      update(done, total, info) {
        // ItemCount is approximate: never let the bar run past its end.
        bar.setTotal(Math.max(total, done, 1));
        bar.update(done, { rate: Math.round(rate(done)), etaText: eta(done, Math.max(total, done)), info });
      },
      stop() {
        bar.stop();
      },
    };
  }

  let lastLine = started;
  return {
    update(done, total, info) {
      if (performance.now() - lastLine < PLAIN_EVERY_MS) return;
      lastLine = performance.now();
      const shownTotal = Math.max(total, done);
      const percent = shownTotal > 0 ? Math.floor((100 * done) / shownTotal) : 0;
      const extra = info ? `, ${info}` : "";
      const speed = `${Math.round(rate(done))}/s`;
      stream.write(`${label} ${done}/~${shownTotal} (${percent}%), ${speed}, ETA ${eta(done, shownTotal)}${extra}\n`);
    },
    stop() {},
  };
}
