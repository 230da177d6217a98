import { readFileSync } from "node:fs";
import { capacityFromEstimate, planCapacity, type Pricing, type TableEstimate } from "@sitelogix/core";
import { describe, expect, it } from "vitest";

const pricing = JSON.parse(readFileSync(new URL("../packages/core/pricing.json", import.meta.url), "utf8")) as Pricing;

describe("capacity model", () => {
  it("a billion 1 KB items at the full table quota take about 7 hours with 16 workers", () => {
    const plan = planCapacity({ items: 1e9, avgItemBytes: 1000, budgetWcu: 40_000 }, pricing);
    expect(plan.hours).toBeGreaterThan(6.5);
    expect(plan.hours).toBeLessThan(7.2);
    expect(plan.workers).toBe(16);
    expect(plan.segments).toBe(64);
    expect(plan.distributed).toBe(true);
    // 1e9 write units at $0.625 per million dominate the cost.
    expect(plan.cost.writes).toBe(625);
    expect(plan.cost.lambda).toBeGreaterThan(0);
    expect(plan.cost.total).toBeGreaterThan(plan.cost.writes);
  });

  it("half the quota doubles the time and halves the workers", () => {
    const full = planCapacity({ items: 1e9, avgItemBytes: 1000, budgetWcu: 40_000 }, pricing);
    const half = planCapacity({ items: 1e9, avgItemBytes: 1000, budgetWcu: 20_000 }, pricing);
    expect(half.hours).toBeCloseTo(full.hours * 2, 0);
    expect(half.workers).toBe(full.workers / 2);
  });

  it("a small table fits one process", () => {
    const plan = planCapacity({ items: 30_000, avgItemBytes: 800, needsWorkFraction: 0.5, budgetWcu: 500 }, pricing);
    expect(plan.itemsToWrite).toBe(15_000);
    expect(plan.workers).toBe(1);
    expect(plan.distributed).toBe(false);
    expect(plan.cost.lambda).toBe(0);
    expect(plan.cost.stepFunctions).toBe(0);
    expect(plan.hours).toBeCloseTo(15_000 / 500 / 3600, 1);
  });

  it("caps a budget above the table's quota at the quota", () => {
    const plan = planCapacity({ items: 1e6, avgItemBytes: 1000, budgetWcu: 80_000 }, pricing);
    expect(plan.effectiveWcu).toBe(40_000);
    expect(plan.limitedBy).toBe("quota");
  });

  it("nothing to write needs one worker and no time", () => {
    const plan = planCapacity({ items: 1e6, avgItemBytes: 1000, needsWorkFraction: 0, budgetWcu: 40_000 }, pricing);
    expect(plan.workers).toBe(1);
    expect(plan.hours).toBe(0);
  });

  it("refuses a budget of 0", () => {
    expect(() => planCapacity({ items: 1, avgItemBytes: 1, budgetWcu: 0 }, pricing)).toThrow(RangeError);
  });

  it("uses the write units estimate measured, so the two agree", () => {
    const table = {
      itemCount: 100_000,
      avgItemBytes: 900,
      needsWork: 40_000,
      sweep: { writeUnits: 80_000, readUnits: 0 },
    } as TableEstimate;
    const plan = capacityFromEstimate(table, 1_000, pricing);
    expect(plan.itemsToWrite).toBe(40_000);
    expect(plan.writeUnits).toBe(80_000);
    expect(plan.hours).toBeCloseTo(80_000 / 1_000 / 3600, 1);
    expect(plan.cost.writes).toBeCloseTo((80_000 / 1e6) * pricing.onDemand.perMillionWriteRequestUnits, 2);
  });
});
