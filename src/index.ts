/** LuxJob's public API. */

export {
  type Catalogue,
  defineJobs,
  type JobContext,
  type JobDefinition,
  type JobLogger,
  loadCatalogue,
  type OptsOf,
  type ResolvedJob,
} from './catalogue';
export { createLuxJob, LuxJob, type LuxJobOptions } from './client';
export { type LuxJobConfig, loadConfig, SETTINGS } from './config';
export {
  DEFAULT_TIMEOUT,
  MAX_RETRIES,
  RETRY_BASE_WAIT,
  STATUS_NAMES,
  type StatusSid,
} from './constants';
export { type Database, type Dialect, openDatabase } from './db';
export {
  CatalogueLoadError,
  ConfigError,
  DatabaseUnavailableError,
  DefinitionError,
  InvalidPayloadError,
  JobNotFoundError,
  LuxJobError,
  SchemaMissingError,
  UnknownJobError,
} from './errors';
export type { FromWorker, ToWorker } from './ipc';
export { type MigrateResult, migrate } from './migrate';
export type { AddOptions, AddResult } from './payload';
export type { ListFilter } from './queries/read';
export type { InitReport } from './queries/recurring';
export type { JobRecord } from './queries/row';
export type { SupervisorRecord } from './queries/supervisors';
export { retryDelaySeconds } from './schedule';
export { runSupervisorProcess } from './supervisor';
export { Supervisor, startSupervisor } from './supervisor/supervisor';
export { VERSION } from './version';
