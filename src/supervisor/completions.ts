import type { Database } from '../db';
import { type Finish, finishJobs } from '../queries/finish';
import type { DatabaseHealth } from './health';

/**
 * Finished runs waiting to be written. Results are never dropped: when the
 * database is away they stay here and are written, in batches, once it is back.
 */
export class Completions {
  private pending: Finish[] = [];
  private flushing: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];
  readonly stats = { batches: 0, written: 0 };

  constructor(
    private readonly db: Database,
    private readonly supervisorId: string,
    private readonly health: DatabaseHealth,
    private readonly onLost: (ids: number[]) => void,
    private readonly batchSize = 200,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  record(finish: Finish): void {
    this.pending.push(finish);
    this.kick();
  }

  /** Resolves when everything recorded so far is written, or after `ms`; returns what is left. */
  async drain(ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.pending.length > 0 && Date.now() < deadline) {
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
    if (this.flushing) return;
    this.flushing = this.flushAll().finally(() => {
      this.flushing = undefined;
      for (const wake of this.idleWaiters.splice(0)) wake();
      if (this.pending.length > 0 && !this.health.isDown) this.kick();
    });
  }

  private async flushAll(): Promise<void> {
    while (this.pending.length > 0) {
      if (!this.health.canTry()) return this.retryLater();
      const batch = this.pending.slice(0, this.batchSize);
      try {
        const { lost } = await finishJobs(this.db, this.supervisorId, batch);
        this.pending.splice(0, batch.length);
        this.stats.batches++;
        this.stats.written += batch.length;
        this.health.succeeded();
        if (lost.length > 0) this.onLost(lost);
      } catch (err) {
        this.health.failed(err);
        return this.retryLater();
      }
    }
  }

  private retryLater(): void {
    setTimeout(() => this.kick(), 250).unref();
  }
}
