import type { Catalogue, OptsOf, ResolvedJob } from './catalogue';
import { loadCatalogue, resolveCatalogue } from './catalogue';
import { type LuxJobConfig, loadConfig } from './config';
import type { StatusSid } from './constants';
import { type Database, explainDatabaseError, openDatabase } from './db';
import { type MigrateResult, migrate } from './migrate';
import type { AddOptions, AddResult } from './payload';
import { prepareJob } from './prepare';
import { insertJob, insertJobs } from './queries/enqueue';
import { countByStatus, getJob, type ListFilter, listJobs } from './queries/read';
import { type InitReport, initRecurring } from './queries/recurring';
import type { JobRecord } from './queries/row';
import { listSupervisors, type SupervisorRecord } from './queries/supervisors';
import { startSupervisor } from './supervisor/supervisor';

export interface LuxJobOptions<C extends Catalogue> {
  /** The catalogue object (typed `add`), or the path of its module. */
  jobs: C | string;
  /** The catalogue's module path, needed by `run()` when `jobs` is an object (workers load it). */
  jobsFile?: string;
  /** Database URL; else LUXJOB_DATABASE_URL, DATABASE_URL, or SQLite under ./data/. */
  database?: string;
  /** Overrides of the configuration read from the environment. */
  config?: Partial<LuxJobConfig>;
}

/**
 * A handle on one LuxJob queue: enqueue, inspect, initialise recurring jobs,
 * and run a supervisor. Cheap to create; `close()` releases the connection.
 */
export class LuxJob<C extends Catalogue = Catalogue> {
  readonly config: LuxJobConfig;
  readonly db: Database;
  private catalogue: Promise<Map<string, ResolvedJob>>;

  constructor(options: LuxJobOptions<C>) {
    const jobsFile = typeof options.jobs === 'string' ? options.jobs : options.jobsFile;
    this.config = loadConfig({
      ...options.config,
      ...(options.database ? { databaseUrl: options.database } : {}),
      ...(jobsFile ? { jobsFile } : {}),
    });
    this.db = openDatabase(this.config.databaseUrl);
    this.catalogue =
      typeof options.jobs === 'string'
        ? loadCatalogue(options.jobs)
        : Promise.resolve().then(() => resolveCatalogue(options.jobs));
    // Surfaced by the first call that needs it, not as an unhandled rejection.
    this.catalogue.catch(() => undefined);
  }

  /** The validated catalogue. */
  jobs(): Promise<Map<string, ResolvedJob>> {
    return this.catalogue;
  }

  /** Creates or updates the tables (knex migrations); safe to run concurrently. */
  migrate(): Promise<MigrateResult> {
    return migrate(this.db);
  }

  /** One row per recurring job: created if missing, moved if its schedule changed. Idempotent. */
  async init(): Promise<InitReport> {
    const jobs = await this.catalogue;
    return this.guard(() => initRecurring(this.db, jobs.values()));
  }

  /**
   * Enqueues a one-off job. Rejects an unknown name or opts that would not
   * survive JSON. With `key`, a no-op while a job with that key is pending.
   */
  async add<K extends keyof C & string>(
    name: K,
    opts?: OptsOf<C[K]>,
    options: AddOptions = {},
  ): Promise<AddResult> {
    const job = prepareJob(await this.catalogue, name, opts, options);
    return this.guard(() => insertJob(this.db, job));
  }

  /** Enqueues many one-off jobs (no keys) in a few multi-row inserts. */
  async addMany<K extends keyof C & string>(
    items: Array<{ name: K; opts?: OptsOf<C[K]>; runAt?: AddOptions['runAt']; priority?: number }>,
  ): Promise<number> {
    const jobs = await this.catalogue;
    const now = new Date();
    const prepared = items.map((item) =>
      prepareJob(jobs, item.name, item.opts, { runAt: item.runAt, priority: item.priority }, now),
    );
    return this.guard(() => insertJobs(this.db, prepared, now));
  }

  list(filter: ListFilter = {}): Promise<JobRecord[]> {
    return this.guard(() => listJobs(this.db, filter));
  }

  get(id: number): Promise<JobRecord | undefined> {
    return this.guard(() => getJob(this.db, id));
  }

  counts(): Promise<Record<StatusSid, number>> {
    return this.guard(() => countByStatus(this.db));
  }

  /** The supervisors registered now (host, pid, workers, version, last heartbeat). */
  supervisors(): Promise<SupervisorRecord[]> {
    return this.guard(() => listSupervisors(this.db));
  }

  /**
   * Runs a supervisor in this process until it is stopped (SIGTERM/SIGINT or
   * `stop()` on the returned handle's promise). Needs the catalogue's file.
   */
  async run(): Promise<void> {
    const supervisor = await startSupervisor({
      config: this.config,
      db: this.db,
      catalogue: await this.catalogue,
    });
    await supervisor.stopped;
  }

  async close(): Promise<void> {
    await this.db.knex.destroy();
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw explainDatabaseError(err, this.db);
    }
  }
}

/** Opens a queue handle. `createLuxJob({ jobs: catalogue })` types `add()` by the catalogue. */
export function createLuxJob<C extends Catalogue>(options: LuxJobOptions<C>): LuxJob<C> {
  return new LuxJob(options);
}
