import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CatalogueLoadError, DefinitionError } from './errors';
import type { AddOptions, AddResult } from './payload';
import { cronProblem, isValidTimezone, parseEvery, type Schedule } from './schedule';

/** What a handler may log through; lines go to the supervisor's log, tagged with the job. */
export interface JobLogger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/** The second argument of every handler. */
export interface JobContext {
  jobId: number;
  name: string;
  /** 1 on the first run, 2 on the first retry, … */
  attempt: number;
  logger: JobLogger;
  /** Raised when the supervisor shuts down gracefully: finish or give up soon. */
  signal: AbortSignal;
  /** Enqueues another job through the supervisor (same rules as `add()`). */
  add(name: string, opts?: unknown, options?: AddOptions): Promise<AddResult>;
}

// biome-ignore lint/suspicious/noExplicitAny: a handler's opts type is whatever its author declares.
export interface JobDefinition<Opts = any, Result = unknown> {
  run: (opts: Opts, ctx: JobContext) => Result | Promise<Result>;
  /** Recurring: seconds, or '90s' | '15m' | '1h' | '1d'. */
  every?: number | string;
  /** Recurring: a 5- or 6-field cron expression. */
  cron?: string;
  /** IANA zone for `cron`, e.g. 'Europe/Berlin'; UTC when absent. */
  timezone?: string;
  /** Seconds before the worker running it is killed; DEFAULT_TIMEOUT when absent. */
  timeout?: number;
  /** Retries before the job is permanently failed; MAX_RETRIES when absent. */
  retries?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: see JobDefinition.
export type Catalogue = Record<string, JobDefinition<any, any>>;

/** The opts type a catalogue entry's handler accepts. */
export type OptsOf<D> = D extends { run: (opts: infer O, ...rest: never[]) => unknown } ? O : never;

/** A definition checked and reduced to what the runtime needs. */
export interface ResolvedJob {
  name: string;
  schedule: Schedule | undefined;
  /** undefined: use the configured default. */
  timeoutSeconds: number | undefined;
  retries: number | undefined;
  run: JobDefinition['run'];
}

const KNOWN_FIELDS = new Set(['run', 'every', 'cron', 'timezone', 'timeout', 'retries']);
const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,191}$/;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  return String(value);
}

export function resolveJob(name: string, def: unknown): ResolvedJob {
  if (!NAME_PATTERN.test(name)) {
    throw new DefinitionError(name, 'name', 'must be 1-191 letters, digits, or _ . : -');
  }
  if (typeof def !== 'object' || def === null) {
    throw new DefinitionError(name, 'definition', 'must be an object like { run(opts, ctx) { … } }');
  }
  const d = def as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!KNOWN_FIELDS.has(key)) {
      throw new DefinitionError(name, key, `is not a known field (known: ${[...KNOWN_FIELDS].join(', ')})`);
    }
  }
  if (typeof d.run !== 'function') {
    throw new DefinitionError(name, 'run', `must be a function (got ${describe(d.run)})`);
  }
  if (d.every !== undefined && d.cron !== undefined) {
    throw new DefinitionError(name, 'every/cron', 'cannot both be set: a job recurs by one schedule');
  }
  let schedule: Schedule | undefined;
  if (d.every !== undefined) {
    const seconds = parseEvery(d.every);
    if (seconds === undefined) {
      throw new DefinitionError(
        name,
        'every',
        `must be seconds > 0 or a duration like '90s', '15m', '1h', '1d' (got ${describe(d.every)})`,
      );
    }
    schedule = { kind: 'every', seconds };
  }
  if (d.timezone !== undefined) {
    if (d.cron === undefined) throw new DefinitionError(name, 'timezone', 'only applies to a cron schedule');
    if (typeof d.timezone !== 'string' || !isValidTimezone(d.timezone)) {
      throw new DefinitionError(
        name,
        'timezone',
        `must be an IANA time zone like 'Europe/Berlin' (got ${describe(d.timezone)})`,
      );
    }
  }
  if (d.cron !== undefined) {
    if (typeof d.cron !== 'string')
      throw new DefinitionError(name, 'cron', `must be a string (got ${describe(d.cron)})`);
    const problem = cronProblem(d.cron);
    if (problem) throw new DefinitionError(name, 'cron', problem);
    schedule = {
      kind: 'cron',
      expression: d.cron.trim().replace(/\s+/g, ' '),
      timezone: d.timezone as string | undefined,
    };
  }
  if (
    d.timeout !== undefined &&
    !(typeof d.timeout === 'number' && Number.isFinite(d.timeout) && d.timeout > 0)
  ) {
    throw new DefinitionError(
      name,
      'timeout',
      `must be a number of seconds > 0 (got ${describe(d.timeout)})`,
    );
  }
  if (d.retries !== undefined && !(Number.isInteger(d.retries) && (d.retries as number) >= 0)) {
    throw new DefinitionError(name, 'retries', `must be a whole number >= 0 (got ${describe(d.retries)})`);
  }
  return {
    name,
    schedule,
    timeoutSeconds: d.timeout as number | undefined,
    retries: d.retries as number | undefined,
    run: d.run as JobDefinition['run'],
  };
}

/** Checks every entry; throws a DefinitionError naming the first bad job and field. */
export function resolveCatalogue(catalogue: unknown): Map<string, ResolvedJob> {
  if (typeof catalogue !== 'object' || catalogue === null || Array.isArray(catalogue)) {
    throw new CatalogueLoadError(
      'a job catalogue must be an object mapping job names to { run, … } definitions',
    );
  }
  const jobs = new Map<string, ResolvedJob>();
  for (const [name, def] of Object.entries(catalogue)) jobs.set(name, resolveJob(name, def));
  return jobs;
}

/**
 * The typed way to write a catalogue: checks every definition now (so a bad
 * cron fails when the module loads) and keeps each handler's opts type, so
 * `add('send_email', opts)` is checked at the call site.
 */
export function defineJobs<C extends Catalogue>(jobs: C): C {
  resolveCatalogue(jobs);
  return jobs;
}

const TS_EXTENSIONS = new Set(['.ts', '.cts', '.mts', '.tsx']);

/**
 * Loads a catalogue module: `.js`/`.cjs` by require, `.mjs` by import,
 * TypeScript through tsx. Its default export (or module.exports) is the catalogue.
 */
export async function loadCatalogueModule(file: string): Promise<Catalogue> {
  const absolute = path.resolve(file);
  const ext = path.extname(absolute);
  let mod: unknown;
  try {
    if (TS_EXTENSIONS.has(ext)) {
      const tsx = require('tsx/cjs/api') as { require: (id: string, from: string) => unknown };
      mod = tsx.require(absolute, __filename);
    } else if (ext === '.mjs') {
      mod = await import(pathToFileURL(absolute).href);
    } else {
      mod = require(absolute);
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const missing = (err as { code?: string }).code === 'MODULE_NOT_FOUND' && reason?.includes(absolute);
    throw new CatalogueLoadError(
      missing
        ? `job catalogue not found: ${absolute} (set LUXJOB_JOBS or --jobs to your catalogue module)`
        : `job catalogue ${absolute} failed to load: ${reason}`,
      { cause: err },
    );
  }
  const exported = (mod as { default?: unknown })?.default ?? mod;
  if (typeof exported !== 'object' || exported === null || Object.keys(exported).length === 0) {
    throw new CatalogueLoadError(
      `job catalogue ${absolute} exports no jobs: export default defineJobs({ name: { run() { … } } })`,
    );
  }
  return exported as Catalogue;
}

export async function loadCatalogue(file: string): Promise<Map<string, ResolvedJob>> {
  return resolveCatalogue(await loadCatalogueModule(file));
}
