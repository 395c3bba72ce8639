import crypto from 'node:crypto';
import os from 'node:os';
import type { ResolvedJob } from '../catalogue';
import type { LuxJobConfig } from '../config';
import { JOBS_TABLE } from '../constants';
import { type Database, explainDatabaseError, isTransientError } from '../db';
import { ConfigError } from '../errors';
import type { Logger } from '../logger';
import { errorToData } from '../payload';
import { WorkerPool } from '../pool';
import { prepareJob } from '../prepare';
import { claimJobs } from '../queries/claim';
import { insertJob } from '../queries/enqueue';
import type { Finish } from '../queries/finish';
import { pruneFinished } from '../queries/prune';
import { findExpiredJobs, findOwnRunning, putBackOrphans, takeOverExpired } from '../queries/recover';
import { initRecurring } from '../queries/recurring';
import type { ClaimedJob } from '../queries/row';
import {
  deregisterSupervisor,
  heartbeat,
  pruneSupervisors,
  registerSupervisor,
} from '../queries/supervisors';
import { describeSchedule, formatSchedule } from '../schedule';
import { type Outcome, type RowUpdate, transition } from '../transitions';
import { VERSION } from '../version';
import { Completions } from './completions';
import { DatabaseHealth } from './health';
import { ReadyQueue } from './ready';
import { Waker } from './waker';
import { type WakeSource, wakeSourceFor } from './wakeups';

export interface SupervisorOptions {
  config: LuxJobConfig;
  db: Database;
  catalogue: Map<string, ResolvedJob>;
  logger?: Logger;
}

/**
 * One supervisor process: claims due rows, runs each on a forked worker,
 * records the outcome; heartbeats, recovers what dead supervisors left, and
 * shuts down without losing a job.
 */
export class Supervisor {
  readonly id: string;
  readonly stopped: Promise<void>;
  private readonly config: LuxJobConfig;
  private readonly db: Database;
  private readonly catalogue: Map<string, ResolvedJob>;
  private readonly logger: Logger;
  private readonly pool: WorkerPool;
  private readonly waker = new Waker();
  private readonly health: DatabaseHealth;
  private readonly completions: Completions;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly wakeups: WakeSource | undefined;
  private stopping = false;
  private hurry: () => void = () => undefined;
  private readonly hurried: Promise<void>;
  private backlog = false;
  private markStopped: () => void = () => undefined;
  private lastPrune = 0;
  private readonly stats = { claims: 0, claimed: 0 };
  /** Jobs on this supervisor's workers right now, by id. */
  private readonly active = new Set<number>();
  /** Claimed ahead while there is a backlog, started as workers free up. */
  private readonly ready: ReadyQueue;
  private claiming = false;

  constructor(options: SupervisorOptions) {
    this.config = options.config;
    this.db = options.db;
    this.catalogue = options.catalogue;
    this.logger = options.logger ?? (require('../logger') as typeof import('../logger')).silentLogger();
    // Fits locked_by (191) however long the host name (Kubernetes pods, FQDNs).
    this.id = `${os.hostname().slice(0, 150)}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;
    if (!this.config.jobsFile) {
      throw new ConfigError(
        'a supervisor needs the job catalogue module: set LUXJOB_JOBS or pass --jobs FILE',
      );
    }
    this.ready = new ReadyQueue(this.config.prefetch);
    this.health = new DatabaseHealth((up, detail, unreachable) => {
      if (up) this.logger.info(`database is back (${detail}); resuming`);
      else if (unreachable) {
        this.logger.error(
          `database unavailable: ${detail}; workers keep running, results are kept until it is back`,
        );
      } else this.logger.error(`database error: ${detail}; results are kept until they can be written`);
    });
    this.completions = new Completions({
      db: this.db,
      supervisorId: this.id,
      health: this.health,
      onLost: (ids) =>
        this.logger.warn(
          `results for jobs ${ids.join(', ')} were not recorded: this supervisor no longer held those runs (its lease expired and another supervisor took them over, or an earlier write whose reply was lost had recorded them)`,
        ),
      // A result is ours to account for until it is written: only then may the orphan check look at its row.
      onSettled: (ids) => {
        for (const id of ids) this.active.delete(id);
      },
      claimComing: () => this.backlog && !this.stopping && !this.health.isDown,
      log: (level, message) => this.logger.log(level, message),
    });
    this.pool = new WorkerPool(
      {
        size: this.config.workers,
        catalogueFile: this.config.jobsFile,
        recycleAfterJobs: this.config.recycleAfterJobs,
        recycleRssMb: this.config.recycleRssMb,
        workerNice: this.config.workerNice,
        cpuHogAfterMs: this.config.cpuHogAfter * 1000,
      },
      {
        log: (level, message, meta) => this.logger.log(level, message, meta),
        enqueue: async (name, opts, addOptions) => {
          const result = await insertJob(this.db, prepareJob(this.catalogue, name, opts, addOptions));
          this.waker.wake();
          return result;
        },
        idle: () => {
          this.startReady();
          if (this.backlog && this.claimSize() > 0) this.waker.wake();
        },
      },
    );
    this.wakeups = wakeSourceFor(
      this.db,
      this.config.databaseUrl,
      () => this.waker.wake(),
      (message) => this.logger.warn(message),
    );
    this.hurried = new Promise((resolve) => {
      this.hurry = resolve;
    });
    this.stopped = new Promise((resolve) => {
      this.markStopped = resolve;
    });
  }

  /** Checks the schema, forks the workers, registers, creates recurring rows, then starts the loop. */
  async start(): Promise<void> {
    const now = new Date();
    try {
      await this.db.knex(JOBS_TABLE).select('id').limit(1);
    } catch (err) {
      throw explainDatabaseError(err, this.db);
    }
    this.logger.info(
      `supervisor ${this.id} starting: ${this.config.workers} workers, poll ${this.config.pollInterval}s, database ${this.db.safeUrl}`,
    );
    for (const job of this.catalogue.values()) {
      const timeout = job.timeoutSeconds ?? this.config.defaultTimeout;
      this.logger.info(`  job ${job.name}: ${describeSchedule(job.schedule)}, timeout ${timeout}s`);
    }
    await this.pool.start();
    await this.register(now);
    const report = await initRecurring(this.db, this.catalogue.values());
    if (report.created.length) this.logger.info(`recurring rows created: ${report.created.join(', ')}`);
    if (report.rescheduled.length)
      this.logger.info(`recurring rows rescheduled: ${report.rescheduled.join(', ')}`);
    await this.recoverExpired();
    this.every(this.config.heartbeatInterval, () => this.beat());
    await this.wakeups?.start();
    this.logger.info(`supervisor ${this.id} running`);
    void this.loop();
  }

  /** Puts this supervisor in the registry (at start, and again if it was presumed dead). */
  private register(now: Date): Promise<void> {
    return registerSupervisor(this.db, {
      id: this.id,
      host: os.hostname(),
      pid: process.pid,
      workers: this.config.workers,
      version: VERSION,
      startedAt: now,
      heartbeatAt: now,
    });
  }

  /** First call: graceful (finish running jobs within the shutdown timeout). Second: stop waiting. */
  requestStop(reason: string): void {
    if (this.stopping) {
      this.logger.warn(`${reason} again: killing running jobs now and putting them back`);
      this.hurry();
      return;
    }
    this.stopping = true;
    this.logger.info(
      `${reason}: no new jobs; waiting up to ${this.config.shutdownTimeout}s for ${this.pool.busyCount()} running`,
    );
    this.waker.wake();
  }

  private every(seconds: number, fn: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(async () => {
      if (running) return;
      running = true;
      try {
        await fn();
      } finally {
        running = false;
      }
    }, seconds * 1000);
    this.timers.push(timer);
  }

  private async loop(): Promise<void> {
    const pollMs = this.config.pollInterval * 1000;
    while (!this.stopping) {
      // Let replies already waiting in the IPC buffers free their workers first, so one claim serves them all.
      if (this.backlog) await new Promise((resolve) => setImmediate(resolve));
      this.startReady();
      const want = this.claimSize();
      if (want > 0) {
        const jobs = this.health.canTry() ? await this.claim(want) : [];
        for (const job of jobs) this.active.add(job.id);
        this.ready.push(jobs);
        this.startReady();
        // A full claim means more may be waiting: claim again as soon as workers free up.
        // Only a claim may change this; a wake-up that found no idle worker knows nothing new.
        this.backlog = jobs.length === want;
      }
      if (this.stopping) break;
      if (this.backlog && this.claimSize() > 0) continue;
      await this.waker.sleep(this.health.isDown ? Math.min(pollMs, 500) : pollMs);
    }
    await this.shutdown();
  }

  /**
   * How many rows to claim now: none unless a worker is idle with nothing held
   * for it, or (during a backlog) what is held is running low.
   */
  private claimSize(): number {
    const idle = this.pool.idleCount();
    const target = this.backlog ? this.ready.target() : 0;
    const want = idle + target - this.ready.length;
    if (want <= 0) return 0;
    if (idle > this.ready.length) return want;
    return target > 0 && this.ready.length <= target / 2 ? want : 0;
  }

  /** Gives held jobs to idle workers; what is left and has waited too long goes back to the table. */
  private startReady(): void {
    if (this.ready.length === 0 || this.stopping) return;
    while (this.ready.length > 0 && this.pool.idleCount() > 0) this.dispatch(this.ready.shift()!);
    for (const job of this.ready.expire()) this.putBackUnstarted(job);
  }

  private putBackUnstarted(job: ClaimedJob): void {
    this.finish(job, this.catalogue.get(job.name), { type: 'put-back', started: false }, job.startedAt);
  }

  /** Claims up to `limit` rows, writing the results waiting to be recorded in the same commit. */
  private async claim(limit: number): Promise<ClaimedJob[]> {
    const finishes = this.completions.take();
    const jobs = await this.claimCarrying(limit, finishes);
    // A result the database refuses must not block claiming: claim alone, and let the
    // completions queue find and write around the bad result.
    if (jobs === 'refused') return (await this.claimCarrying(limit, [])) as ClaimedJob[];
    return jobs;
  }

  private async claimCarrying(limit: number, finishes: Finish[]): Promise<ClaimedJob[] | 'refused'> {
    const now = new Date();
    this.claiming = true;
    try {
      const { jobs, lost } = await claimJobs(
        this.db,
        {
          supervisorId: this.id,
          limit,
          now,
          leaseUntil: new Date(now.getTime() + this.config.leaseDuration * 1000),
        },
        finishes,
      );
      this.health.succeeded();
      this.completions.written(finishes, lost);
      this.stats.claims++;
      this.stats.claimed += jobs.length;
      return jobs;
    } catch (err) {
      this.completions.giveBack(finishes);
      if (finishes.length > 0 && !isTransientError(err)) return 'refused';
      this.health.failed(explainDatabaseError(err, this.db));
      return [];
    } finally {
      this.claiming = false;
    }
  }

  private dispatch(job: ClaimedJob): void {
    const def = this.catalogue.get(job.name);
    // The catalogue's schedule wins over the row's, so a changed definition takes effect at once.
    if (def?.schedule) job.schedule = formatSchedule(def.schedule);
    const timeoutSeconds = def?.timeoutSeconds ?? this.config.defaultTimeout;
    const attempt = job.retryCount + 1;
    const meta = { job: job.name, jobId: job.id };
    const startedAt = new Date();
    // One info line per run (its end, with the duration), as graphile-worker and Oban log; the start is debug.
    if (this.logger.isDebugEnabled()) this.logger.debug(`started (attempt ${attempt})`, meta);
    this.pool
      .run({ jobId: job.id, name: job.name, opts: job.opts, attempt, timeoutMs: timeoutSeconds * 1000 })
      // No worker after all (one died between the count and the dispatch): hand the row back untouched.
      .catch((): Outcome => ({ type: 'put-back' }))
      .then((outcome) => {
        this.ready.finished();
        this.finish(job, def, outcome, startedAt);
      })
      .catch((err) =>
        this.logger.error(`could not record the end of the job: ${(err as Error).stack}`, meta),
      );
  }

  /** `ranSince`: when the job went to its worker (its claim may be a little older). */
  private finish(job: ClaimedJob, def: ResolvedJob | undefined, outcome: Outcome, ranSince: Date): void {
    const now = new Date();
    const { startedAt } = job;
    const policy = {
      maxRetries: def?.retries ?? this.config.maxRetries,
      retryBaseWait: this.config.retryBaseWait,
    };
    let update: RowUpdate;
    try {
      update = transition(job, outcome, { startedAt, now, policy });
    } catch (err) {
      // Only a corrupt schedule column gets here; fail the row rather than leave it running.
      const error = errorToData(err);
      update = transition(
        { ...job, schedule: null },
        { type: 'failure', kind: 'error', error },
        { startedAt, now, policy },
      );
    }
    this.logOutcome(job, outcome, update, now.getTime() - ranSince.getTime(), policy.maxRetries);
    this.completions.record({ id: job.id, startedAt: job.startedAt, update });
  }

  private logOutcome(
    job: ClaimedJob,
    outcome: Outcome,
    update: RowUpdate,
    ms: number,
    maxRetries: number,
  ): void {
    const meta = { job: job.name, jobId: job.id };
    if (outcome.type === 'success') {
      const next = update.run_at ? `; next run ${update.run_at.toISOString()}` : '';
      this.logger.info(`finished in ${ms} ms${next}`, meta);
      return;
    }
    if (outcome.type === 'put-back') {
      if (outcome.started === false) this.logger.debug('claimed ahead but not started; put back', meta);
      else this.logger.warn(`interrupted by shutdown after ${ms} ms; put back to run again`, meta);
      return;
    }
    const what = outcome.kind === 'timeout' ? 'killed' : `failed (${outcome.kind})`;
    const why = `${outcome.error.name}: ${outcome.error.message}`;
    if (update.status_sid === 'f') {
      this.logger.warn(
        `${what} after ${ms} ms: ${why}; retry ${update.retry_count}/${maxRetries} at ${update.run_at?.toISOString()}`,
        meta,
      );
    } else {
      const resume = update.run_at ? `; the schedule resumes at ${update.run_at.toISOString()}` : '';
      this.logger.error(
        `${what} after ${ms} ms: ${why}; failed permanently after ${job.retryCount} retries${resume}`,
        meta,
      );
    }
    if (outcome.error.stack && outcome.kind === 'error') this.logger.debug(outcome.error.stack, meta);
  }

  /** Heartbeat, lease renewal, recovery of dead supervisors' rows, pruning. */
  private async beat(): Promise<void> {
    if (!this.health.canTry()) return;
    const now = new Date();
    try {
      const known = await heartbeat(
        this.db,
        this.id,
        now,
        new Date(now.getTime() + this.config.leaseDuration * 1000),
      );
      if (!known) {
        this.logger.warn('this supervisor had been presumed dead and pruned; registering again');
        await this.register(now);
      }
      this.health.succeeded();
      // After an outage every lease looks expired; give the others one lease to heartbeat before judging them dead.
      if (Date.now() - this.health.healthySince >= this.config.leaseDuration * 1000) {
        await this.recoverExpired();
      }
      await this.putBackOrphans(now);
      await pruneSupervisors(this.db, new Date(now.getTime() - 3 * this.config.leaseDuration * 1000));
      await this.pruneHistory(now);
    } catch (err) {
      this.health.failed(explainDatabaseError(err, this.db));
    }
    this.completions.kick();
  }

  private async recoverExpired(): Promise<void> {
    const now = new Date();
    const expired = await findExpiredJobs(this.db, now, this.id);
    for (const job of expired) {
      const leaseUntil = new Date(now.getTime() + this.config.leaseDuration * 1000);
      if (!(await takeOverExpired(this.db, job, this.id, now, leaseUntil))) continue;
      this.active.add(job.id);
      const def = this.catalogue.get(job.name);
      if (def?.schedule) job.schedule = formatSchedule(def.schedule);
      const [host, pid] = job.lockedBy.split(':');
      const outcome: Outcome = {
        type: 'failure',
        kind: 'lost',
        error: {
          name: 'SupervisorLostError',
          message: `supervisor lost: ${host}/${pid} stopped heartbeating while running this job`,
        },
      };
      this.logger.warn(`recovering from lost supervisor ${job.lockedBy}`, { job: job.name, jobId: job.id });
      this.finish(job, def, outcome, now);
    }
    if (expired.length > 0) this.waker.wake();
  }

  /**
   * A claim can commit while its reply is lost (the connection cut at that
   * moment): its rows are then ours in the database but on none of our workers,
   * and no one else would recover them while we heartbeat. Hand them back.
   * Rows claimed moments ago may belong to a claim whose reply is on its way.
   */
  private async putBackOrphans(now: Date): Promise<void> {
    if (this.claiming) return;
    const settled = now.getTime() - Math.max(5000, 2 * this.config.heartbeatInterval * 1000);
    const orphans = (await findOwnRunning(this.db, this.id))
      .filter((row) => !this.active.has(row.id) && (row.startedAt?.getTime() ?? 0) < settled)
      .map((row) => row.id);
    if (orphans.length === 0 || this.claiming) return;
    const back = await putBackOrphans(this.db, this.id, orphans, now);
    if (back > 0)
      this.logger.warn(
        `put back ${back} jobs claimed while the database connection failed: ${orphans.join(', ')}`,
      );
    this.waker.wake();
  }

  private async pruneHistory(now: Date): Promise<void> {
    if (this.config.retentionDays <= 0 || now.getTime() - this.lastPrune < 3600_000) return;
    this.lastPrune = now.getTime();
    const removed = await pruneFinished(
      this.db,
      new Date(now.getTime() - this.config.retentionDays * 86400_000),
    );
    if (removed > 0)
      this.logger.info(`pruned ${removed} finished jobs older than ${this.config.retentionDays} days`);
  }

  private async shutdown(): Promise<void> {
    const shutdownMs = this.config.shutdownTimeout * 1000;
    const held = this.ready.expire(undefined, true);
    for (const job of held) this.putBackUnstarted(job);
    if (held.length > 0) this.logger.info(`put back ${held.length} jobs claimed ahead and not started`);
    this.pool.abortAll();
    const finished = await Promise.race([this.pool.waitIdle(shutdownMs), this.hurried.then(() => false)]);
    if (!finished)
      this.logger.warn(`killing ${this.pool.busyCount()} jobs still running; they will run again`);
    await this.pool.killAll();
    const left = await this.completions.drain(Math.max(10_000, shutdownMs));
    if (left > 0) {
      this.logger.error(
        `${left} results could not be written (database unavailable); those jobs will be recovered and run again`,
      );
    }
    for (const timer of this.timers) clearInterval(timer);
    await this.wakeups?.stop();
    try {
      await deregisterSupervisor(this.db, this.id);
    } catch (err) {
      this.logger.warn(`could not deregister: ${(err as Error).message}`);
    }
    const { claims, claimed } = this.stats;
    const { batches, written } = this.completions.stats;
    this.logger.info(
      `supervisor ${this.id} stopped: ran ${claimed} jobs from ${claims} claims (${(claimed / Math.max(1, claims)).toFixed(1)} a claim), recorded in ${batches} writes (${(written / Math.max(1, batches)).toFixed(1)} a write)`,
    );
    this.markStopped();
  }
}

/** Starts a supervisor (the caller owns the database handle and its closing). */
export async function startSupervisor(options: SupervisorOptions): Promise<Supervisor> {
  const supervisor = new Supervisor(options);
  await supervisor.start();
  return supervisor;
}
