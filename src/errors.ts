/**
 * Every error LuxJob raises on purpose is one of these classes, so callers can
 * branch on `instanceof` or on `code` and operators get a sentence that says
 * what was wrong and what to do.
 */
export class LuxJobError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value (environment variable, flag or option) is invalid. */
export class ConfigError extends LuxJobError {
  constructor(message: string) {
    super('LUXJOB_CONFIG', message);
  }
}

/** A job definition in the catalogue is invalid; names the job and the field. */
export class DefinitionError extends LuxJobError {
  readonly job: string;
  readonly field: string;
  constructor(job: string, field: string, problem: string) {
    super('LUXJOB_DEFINITION', `job "${job}": ${field} ${problem}`);
    this.job = job;
    this.field = field;
  }
}

/** The catalogue module could not be loaded or does not export a catalogue. */
export class CatalogueLoadError extends LuxJobError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LUXJOB_CATALOGUE', message, options);
  }
}

/** `add()` named a job the catalogue does not define. */
export class UnknownJobError extends LuxJobError {
  readonly job: string;
  constructor(job: string, known: readonly string[]) {
    const list = known.length > 0 ? known.join(', ') : '(the catalogue is empty)';
    super('LUXJOB_UNKNOWN_JOB', `unknown job "${job}": the catalogue defines ${list}`);
    this.job = job;
  }
}

/** A payload (opts) or option given to `add()` cannot be stored as JSON. */
export class InvalidPayloadError extends LuxJobError {
  constructor(message: string) {
    super('LUXJOB_PAYLOAD', message);
  }
}

/** The database has no LuxJob tables, or an older schema. */
export class SchemaMissingError extends LuxJobError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(
      'LUXJOB_SCHEMA',
      `${detail}: run \`luxjob migrate\` (or \`npx knex migrate:latest\`) first`,
      options,
    );
  }
}

/** The database cannot be reached or refuses our credentials. */
export class DatabaseUnavailableError extends LuxJobError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LUXJOB_DATABASE', message, options);
  }
}

/** A job id that no row has. */
export class JobNotFoundError extends LuxJobError {
  constructor(id: number) {
    super('LUXJOB_NOT_FOUND', `no job with id ${id}`);
  }
}
