import type { Database } from '../db';
import { type Finish, finishJobs } from '../queries/finish';
import type { DatabaseHealth } from './health';

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

  constructor(
    private readonly db: Database,
    private readonly supervisorId: string,
    private readonly health: DatabaseHealth,
    private readonly onLost: (ids: number[]) => void,
    /** True while a claim is expected soon (a backlog), which will carry pending results. */
    private readonly claimComing: () => boolean,
    private readonly batchSize = 200,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  record(finish: Finish): void {
    this.pending.push(finish);
    if (!this.claimComing()) {
      this.kick();
      return;
    }
    if (!this.carryTimer) {
      this.carryTimer = setTimeout(() => {
        this.carryTimer = undefined;
        this.kick();
      }, CARRY_WAIT_MS);
    }
  }

  /** Hands pending results to a claim that writes them in its own transaction. */
  take(): Finish[] {
    return this.pending.splice(0, this.batchSize);
  }

  /** The claim that took `batch` committed; `lost` were no longer ours. */
  written(batch: Finish[], lost: number[]): void {
    if (batch.length === 0) return;
    this.stats.batches++;
    this.stats.written += batch.length;
    if (lost.length > 0) this.onLost(lost);
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
      if (this.pending.length > 0 && !this.health.isDown) this.kick();
    });
  }

  private wakeWaiters(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async flushAll(): Promise<void> {
    while (this.pending.length > 0) {
      if (!this.health.canTry()) return this.retryLater();
      const batch = this.pending.splice(0, this.batchSize);
      try {
        const { lost } = await finishJobs(this.db, this.supervisorId, batch);
        this.health.succeeded();
        this.written(batch, lost);
      } catch (err) {
        this.pending.unshift(...batch);
        this.health.failed(err);
        return this.retryLater();
      }
    }
  }

  private retryLater(): void {
    setTimeout(() => this.kick(), 250).unref();
  }
}
