import os from 'node:os';
import { DEFAULT_DATABASE_URL, DEFAULT_TIMEOUT, MAX_RETRIES, RETRY_BASE_WAIT } from './constants';
import { ConfigError } from './errors';

export type LogFormat = 'text' | 'json';

/** Everything a supervisor or client can be tuned with. Times are in seconds. */
export interface LuxJobConfig {
  databaseUrl: string;
  /** Path of the job catalogue module (required to run a supervisor). */
  jobsFile: string | undefined;
  workers: number;
  pollInterval: number;
  logDir: string;
  logFormat: LogFormat;
  logLevel: string;
  maxRetries: number;
  retryBaseWait: number;
  defaultTimeout: number;
  heartbeatInterval: number;
  leaseDuration: number;
  shutdownTimeout: number;
  /** Replace a worker after it ran this many jobs; 0 = never. */
  recycleAfterJobs: number;
  /** Replace a worker, between jobs, once its RSS passes this many MiB; 0 = never. */
  recycleRssMb: number;
  /** Days a finished one-off job is kept before it is pruned; 0 = keep forever. */
  retentionDays: number;
  /** Added to the workers' nice value, so jobs that burn CPU cannot starve their supervisor. */
  workerNice: number;
  /** Most jobs claimed ahead of idle workers while there is a backlog; 0 = claim only for idle workers. */
  prefetch: number;
  /** Seconds a job runs before its CPU use is checked; one using most of a core drops to nice 19. 0 = never. */
  cpuHogAfter: number;
}

interface Setting<K extends keyof LuxJobConfig> {
  key: K;
  env: string;
  parse: (raw: string, name: string) => LuxJobConfig[K];
  doc: string;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];

function number(min: number, opts: { integer?: boolean; exclusiveMin?: boolean } = {}) {
  return (raw: string, name: string): number => {
    const value = Number(raw.trim());
    const kind = opts.integer ? 'a whole number' : 'a number';
    const bound = opts.exclusiveMin ? `> ${min}` : `>= ${min}`;
    const ok =
      raw.trim() !== '' &&
      Number.isFinite(value) &&
      (!opts.integer || Number.isInteger(value)) &&
      (opts.exclusiveMin ? value > min : value >= min);
    if (!ok) throw new ConfigError(`${name} must be ${kind} ${bound}, got "${raw}"`);
    return value;
  };
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: string, name: string): T => {
    if (!values.includes(raw as T)) {
      throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  };
}

const text = (raw: string): string => raw;

/** The table of settings: the README's configuration section is written from it. */
export const SETTINGS: Setting<keyof LuxJobConfig>[] = [
  { key: 'jobsFile', env: 'LUXJOB_JOBS', parse: text, doc: 'path of the job catalogue module (.js or .ts)' },
  { key: 'workers', env: 'LUXJOB_WORKERS', parse: number(1, { integer: true }), doc: 'worker processes' },
  {
    key: 'pollInterval',
    env: 'LUXJOB_POLL_INTERVAL',
    parse: number(0.01),
    doc: 'seconds between polls of an empty queue',
  },
  { key: 'logDir', env: 'LUXJOB_LOG_DIR', parse: text, doc: 'directory of lux_job.log' },
  {
    key: 'logFormat',
    env: 'LUXJOB_LOG_FORMAT',
    parse: oneOf(['text', 'json'] as const),
    doc: 'text or json',
  },
  { key: 'logLevel', env: 'LUXJOB_LOG_LEVEL', parse: oneOf(LOG_LEVELS), doc: LOG_LEVELS.join(', ') },
  {
    key: 'maxRetries',
    env: 'LUXJOB_MAX_RETRIES',
    parse: number(0, { integer: true }),
    doc: 'retries before a job is permanently failed (x)',
  },
  {
    key: 'retryBaseWait',
    env: 'LUXJOB_RETRY_BASE_WAIT',
    parse: number(0),
    doc: 'seconds before the first retry',
  },
  {
    key: 'defaultTimeout',
    env: 'LUXJOB_DEFAULT_TIMEOUT',
    parse: number(0, { exclusiveMin: true }),
    doc: 'seconds a job may run unless it sets its own timeout',
  },
  {
    key: 'heartbeatInterval',
    env: 'LUXJOB_HEARTBEAT_INTERVAL',
    parse: number(0.05),
    doc: 'seconds between heartbeats (and lease renewals)',
  },
  {
    key: 'leaseDuration',
    env: 'LUXJOB_LEASE',
    parse: number(0.2),
    doc: 'seconds a running job stays claimed without a heartbeat',
  },
  {
    key: 'shutdownTimeout',
    env: 'LUXJOB_SHUTDOWN_TIMEOUT',
    parse: number(0),
    doc: 'seconds running jobs get to finish after SIGTERM',
  },
  {
    key: 'recycleAfterJobs',
    env: 'LUXJOB_RECYCLE_AFTER_JOBS',
    parse: number(0, { integer: true }),
    doc: 'replace a worker after this many jobs (0 = never)',
  },
  {
    key: 'recycleRssMb',
    env: 'LUXJOB_RECYCLE_RSS_MB',
    parse: number(0),
    doc: 'replace a worker whose RSS passes this many MiB (0 = never)',
  },
  {
    key: 'workerNice',
    env: 'LUXJOB_WORKER_NICE',
    parse: (raw, name) => {
      const value = number(0, { integer: true })(raw, name);
      if (value > 19) throw new ConfigError(`${name} must be a whole number from 0 to 19, got "${raw}"`);
      return value;
    },
    doc: 'lower CPU priority of workers (nice, 0-19)',
  },
  {
    key: 'prefetch',
    env: 'LUXJOB_PREFETCH',
    parse: number(0, { integer: true }),
    doc: 'most jobs claimed ahead of idle workers during a backlog (0 = off; default 8 × workers)',
  },
  {
    key: 'cpuHogAfter',
    env: 'LUXJOB_CPU_HOG_AFTER',
    parse: number(0),
    doc: 'seconds before a job using most of a core drops to nice 19 until it ends (0 = never)',
  },
  {
    key: 'retentionDays',
    env: 'LUXJOB_RETENTION_DAYS',
    parse: number(0),
    doc: 'days finished one-off jobs are kept (0 = forever)',
  },
];

export function defaultWorkers(): number {
  return Math.max(2, os.availableParallelism());
}

export function defaults(): LuxJobConfig {
  return {
    databaseUrl: DEFAULT_DATABASE_URL,
    jobsFile: undefined,
    workers: defaultWorkers(),
    pollInterval: 3,
    logDir: './log',
    logFormat: 'text',
    logLevel: 'info',
    maxRetries: MAX_RETRIES,
    retryBaseWait: RETRY_BASE_WAIT,
    defaultTimeout: DEFAULT_TIMEOUT,
    heartbeatInterval: 5,
    leaseDuration: 15,
    shutdownTimeout: 25,
    recycleAfterJobs: 0,
    recycleRssMb: 0,
    retentionDays: 7,
    workerNice: 5,
    cpuHogAfter: 0.05,
    prefetch: -1, // 8 × workers, set by loadConfig unless configured
  };
}

/** `LUXJOB_DATABASE_URL` wins over `DATABASE_URL`; SQLite under ./data/ when neither is set. */
export function databaseUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.LUXJOB_DATABASE_URL || env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

/**
 * Defaults, then the environment, then explicit overrides; every value is
 * validated once here so nothing downstream has to doubt it.
 */
export function loadConfig(
  overrides: Partial<LuxJobConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): LuxJobConfig {
  const config = defaults();
  config.databaseUrl = databaseUrlFromEnv(env);
  const target = config as unknown as Record<string, unknown>;
  for (const setting of SETTINGS) {
    const raw = env[setting.env];
    if (raw !== undefined && raw !== '') target[setting.key] = setting.parse(raw, setting.env);
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const setting = SETTINGS.find((s) => s.key === key);
    target[key] = setting ? setting.parse(String(value), key) : value;
  }
  if (config.prefetch < 0) config.prefetch = 8 * config.workers;
  if (config.heartbeatInterval >= config.leaseDuration) {
    throw new ConfigError(
      `the heartbeat interval (${config.heartbeatInterval}s) must be shorter than the lease (${config.leaseDuration}s), or leases expire while their supervisor is alive`,
    );
  }
  return config;
}
