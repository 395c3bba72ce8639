import { performance } from 'node:perf_hooks';
import type { ClaimedJob } from '../queries/row';

/** How far ahead the queue holds work: the jobs its workers will ask for within this time. */
const HORIZON_MS = 20;
/** A held job not started within this time goes back to the table, for any supervisor to take. */
export const READY_TTL_MS = 1000;
/** Completions are counted per window to estimate how fast workers free up. */
const WINDOW_MS = 100;

/**
 * Claimed jobs waiting for a worker. While there is a backlog the supervisor
 * claims a little ahead, so a worker that frees up starts its next job at once
 * instead of waiting for a round trip to the database, and each claim fetches
 * more rows. It holds only what its workers will finish within about 20 ms
 * (none while jobs are long), so other supervisors are not starved and a held
 * row is "running" in the table only for moments.
 */
export class ReadyQueue {
  private readonly held: Array<{ job: ClaimedJob; heldAt: number }> = [];
  private windowStart = 0;
  private inWindow = 0;
  private lastWindow = 0;
  private readonly max: number;

  /** `max`: the most jobs held beyond the idle workers; 0 turns claiming ahead off. Times: performance.now(). */
  constructor(max: number) {
    this.max = Math.max(0, max);
  }

  get length(): number {
    return this.held.length;
  }

  /** Jobs a claim just returned; their time in the queue counts from now, not from the claim's start. */
  push(jobs: ClaimedJob[], now = performance.now()): void {
    for (const job of jobs) this.held.push({ job, heldAt: now });
  }

  /** The next job to start, oldest claim first. */
  shift(): ClaimedJob | undefined {
    return this.held.shift()?.job;
  }

  /** Removes and returns the jobs held longer than the TTL (all of them with `all`). */
  expire(now = performance.now(), all = false): ClaimedJob[] {
    // Held in the order they arrived, so the stale ones are a prefix: called after every
    // dispatch, this looks at one entry and allocates nothing while none is stale.
    let stale = 0;
    while (stale < this.held.length && (all || now - this.held[stale]!.heldAt >= READY_TTL_MS)) stale++;
    return stale === 0 ? [] : this.held.splice(0, stale).map((entry) => entry.job);
  }

  /** A worker finished a job: feeds the estimate of how fast workers free up. */
  finished(now = performance.now()): void {
    this.roll(now);
    this.inWindow++;
  }

  /** How many jobs to hold beyond the idle workers right now. */
  target(now = performance.now()): number {
    if (this.max === 0) return 0;
    this.roll(now);
    const perMs = Math.max(this.lastWindow, this.inWindow) / WINDOW_MS;
    return Math.min(this.max, Math.floor(perMs * HORIZON_MS));
  }

  private roll(now: number): void {
    const elapsed = now - this.windowStart;
    if (elapsed < WINDOW_MS) return;
    // A quiet stretch longer than a window means nothing finished in the last one.
    this.lastWindow = elapsed < 2 * WINDOW_MS ? this.inWindow : 0;
    this.inWindow = 0;
    this.windowStart = now;
  }
}
