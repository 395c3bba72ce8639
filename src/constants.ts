/** The seed's defaults, kept under the seed's names. All are overridable by configuration. */
export const MAX_RETRIES = 7;
/** Seconds before the first retry; each later retry waits 60 % longer. */
export const RETRY_BASE_WAIT = 60;
/** Seconds a job may run before its worker is killed. */
export const DEFAULT_TIMEOUT = 60;
export const RETRY_GROWTH = 1.6;

export const JOBS_TABLE = 'lux_jobs';
export const SUPERVISORS_TABLE = 'lux_supervisors';
export const DEFAULT_DATABASE_URL = 'sqlite:./data/luxjob.sqlite3';

/** A response larger than this is cut, so one runaway result cannot bloat the table. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export type StatusSid = 's' | 'r' | 'f' | 'd' | 'x';
export const STATUS_NAMES: Record<StatusSid, string> = {
  s: 'scheduled',
  r: 'running',
  f: 'failed, retry pending',
  d: 'done',
  x: 'permanently failed',
};
