// Coalesced checkpoint writes: at most one in flight, the next one at most an interval after an
// item completes, so the ledger sees a few writes a second per segment, not one per item.
import type { SweepCheckpoint } from "../ledger/index.js";

export type Position = Pick<SweepCheckpoint, "cursor" | "done" | "pages" | "counts">;

export class Checkpointer {
  private dirty = false;
  private writing?: Promise<void>;
  private timer?: ReturnType<typeof setTimeout>;
  private closed = false;
  /** The first failed write (a lost lease, a lost ledger): the slice stops on it. */
  error: unknown;

  constructor(
    private readonly save: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Something changed: write within the interval. */
  mark(): void {
    this.dirty = true;
    if (this.writing || this.timer || this.error !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.write();
    }, this.intervalMs);
  }

  private write(): void {
    if (this.writing || !this.dirty) return;
    this.dirty = false;
    this.writing = this.save()
      .catch((err) => {
        this.error ??= err;
        this.onError(err);
      })
      .finally(() => {
        this.writing = undefined;
        if (this.dirty) this.mark();
      });
  }

  /** Waits for the write in flight; the caller writes the final position itself. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    if (this.error !== undefined) throw this.error;
  }
}
