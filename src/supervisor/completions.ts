import type { Database } from '../db';
import { isTransientError } from '../db';
import { bound } from '../payload';
import { type Finish, finishJobs } from '../queries/finish';
import type { DatabaseHealth } from './health';

export interface CompletionsOptions {
  db: Database;
  supervisorId: string;
  health: DatabaseHealth;
  /** Results that were not ours to write any more (the lease was lost meanwhile). */
  onLost(ids: number[]): void;
  /** Results that are settled: written, lost, or given up on. */
  onSettled(ids: number[]): void;
  /** True while a claim is expected soon (a backlog), which will carry pending results. */
  claimComing(): boolean;
  log(level: 'warn' | 'error', message: string): void;
}

/** How long a result may wait for the next claim to carry it before it is written on its own. */
const CARRY_WAIT_MS = 20;

/**
 * Finished runs waiting to be written. While there is a backlog the next claim
 * carries them (one commit for both); otherwise they are written on their own,
 * in batches. Results are never dropped: when the database is away they stay
 * here and are written once it is back.
 */
export class Completions {
  private pending: Finish[] = [];
  private flushing: Promise<void> | undefined;
  private carryTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  readonly stats = { batches: 0, written: 0 };

  // A power of two: batches are padded to one (padToShape), so this is also the largest shape.
  private readonly batchSize = 128;

  constructor(private readonly o: CompletionsOptions) {}

  get size(): number {
    return this.pending.length;
  }

  record(finish: Finish): void {
    this.pending.push(finish);
    if (!this.o.claimComing()) {
      this.kick();
      return;
    }
    this.armCarryTimer();
  }

  private armCarryTimer(): void {
    this.carryTimer ??= setTimeout(() => {
      this.carryTimer = undefined;
      this.kick();
    }, CARRY_WAIT_MS);
  }

  /** Hands pending results to a claim that writes them in its own transaction. */
  take(): Finish[] {
    // The wait restarts with the next result: the timer is for results no claim came for.
    clearTimeout(this.carryTimer);
    this.carryTimer = undefined;
    const batch = this.pending.splice(0, this.batchSize);
    // More than one claim carries: the rest must not wait for a result that may never come.
    if (this.pending.length > 0) this.armCarryTimer();
    return batch;
  }

  /** The claim that took `batch` committed; `lost` were no longer ours. */
  written(batch: Finish[], lost: number[]): void {
    if (batch.length === 0) return;
    this.stats.batches++;
    this.stats.written += batch.length;
    if (lost.length > 0) this.o.onLost(lost);
    this.o.onSettled(batch.map((f) => f.id));
    this.wakeWaiters();
  }

  /** The claim that took `batch` failed: keep the results, first in line. */
  giveBack(batch: Finish[]): void {
    this.pending.unshift(...batch);
    this.kick();
  }

  /** Resolves when everything recorded so far is written, or after `ms`; returns what is left. */
  async drain(ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    while ((this.pending.length > 0 || this.flushing) && Date.now() < deadline) {
      this.kick();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(250, Math.max(1, deadline - Date.now())));
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.pending.length;
  }

  /** Starts a flush unless one runs; a flush writes until nothing is pending or the database fails. */
  kick(): void {
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = this.flushAll().finally(() => {
      this.flushing = undefined;
      this.wakeWaiters();
      if (this.pending.length > 0 && !this.o.health.isDown) this.kick();
    });
  }

  private wakeWaiters(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async flushAll(): Promise<void> {
    while (this.pending.length > 0) {
      if (!this.o.health.canTry()) return this.retryLater();
      const batch = this.pending.splice(0, this.batchSize);
      try {
        await this.write(batch);
      } catch (err) {
        if (!isTransientError(err)) {
          // Not the database's absence: it refused something in this batch. Find which.
          if (await this.writeOneByOne(batch)) continue;
          return this.retryLater();
        }
        this.pending.unshift(...batch);
        this.o.health.failed(err);
        return this.retryLater();
      }
    }
  }

  private async write(batch: Finish[]): Promise<void> {
    const { lost } = await finishJobs(this.o.db, this.o.supervisorId, batch);
    this.o.health.succeeded();
    this.written(batch, lost);
  }

  /**
   * Writes each result alone; one the database refuses (say, text it cannot
   * store) is written with a response saying so, so one bad result never
   * holds back the rest. Returns false when the database went away meanwhile.
   */
  private async writeOneByOne(batch: Finish[]): Promise<boolean> {
    for (let i = 0; i < batch.length; i++) {
      const finish = batch[i]!;
      try {
        await this.write([finish]);
      } catch (err) {
        if (isTransientError(err)) {
          this.pending.unshift(...batch.slice(i));
          this.o.health.failed(err);
          return false;
        }
        const why = err instanceof Error ? err.message : String(err);
        this.o.log(
          'error',
          `the database refused the result of job ${finish.id} (${why}); storing a note instead`,
        );
        const response = bound(`[result could not be stored: ${why}]`);
        try {
          await this.write([{ ...finish, update: { ...finish.update, response } }]);
        } catch (again) {
          this.o.log('error', `could not record the end of job ${finish.id}: ${(again as Error).message}`);
          this.o.onSettled([finish.id]);
        }
      }
    }
    return true;
  }

  private retryLater(): void {
    setTimeout(() => this.kick(), 250).unref();
  }
}
