import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { ConfigError, DatabaseUnavailableError, SchemaMissingError } from './errors';

export type Dialect = 'sqlite' | 'mysql' | 'pg';

export interface Database {
  knex: Knex;
  dialect: Dialect;
  /** The URL with any password masked, for logs and error messages. */
  safeUrl: string;
  /** PostgreSQL only: the schema the tables live in (from `?schema=`). */
  schema: string | undefined;
}

/** A knex pool `afterCreate` hook that runs one statement on each new connection (mysql2 and pg alike). */
function runOnConnect(sql: string) {
  return (
    conn: { query(sql: string, cb: (err: Error | null) => void): void },
    done: (err: Error | null, conn: unknown) => void,
  ) => conn.query(sql, (err) => done(err, conn));
}

function maskPassword(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)([^@]*)@/, '$1***@');
}

/** The knex config for a `DATABASE_URL`; exported for knexfile.ts. */
export function knexConfigFromUrl(url: string): { config: Knex.Config; dialect: Dialect; schema?: string } {
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  if (scheme === 'sqlite' || scheme === 'sqlite3' || scheme === 'file') {
    let file = url.slice(url.indexOf(':') + 1);
    if (file.startsWith('//')) file = file.slice(2);
    if (file === '')
      throw new ConfigError(`database URL "${url}" names no file: use sqlite:./data/luxjob.sqlite3`);
    return {
      dialect: 'sqlite',
      config: {
        client: 'better-sqlite3',
        connection: { filename: file },
        useNullAsDefault: true,
        pool: {
          min: 1,
          max: 1,
          // WAL lets readers (the dashboard, the CLI) work while a supervisor writes;
          // the busy timeout makes concurrent supervisors wait for the write lock instead of failing.
          afterCreate(
            conn: { pragma(sql: string): unknown },
            done: (err: Error | null, conn: unknown) => void,
          ) {
            try {
              conn.pragma('journal_mode = WAL');
              conn.pragma('synchronous = NORMAL');
              conn.pragma('busy_timeout = 10000');
              done(null, conn);
            } catch (err) {
              done(err as Error, conn);
            }
          },
        },
      },
    };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `database URL "${maskPassword(url)}" is not a URL: use sqlite:./data/luxjob.sqlite3, mysql://user:pass@host:3306/db or postgres://user@host:5432/db`,
    );
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (scheme === 'mysql' || scheme === 'mysql2' || scheme === 'mariadb') {
    if (!database)
      throw new ConfigError(`database URL "${maskPassword(url)}" names no database (…:3306/NAME)`);
    return {
      dialect: 'mysql',
      config: {
        client: 'mysql2',
        connection: {
          host: parsed.hostname || '127.0.0.1',
          port: parsed.port ? Number(parsed.port) : 3306,
          user: decodeURIComponent(parsed.username || 'root'),
          password: decodeURIComponent(parsed.password),
          database,
          // Dates cross the wire as UTC whatever the server's or host's zone.
          timezone: 'Z',
          charset: 'utf8mb4',
          connectTimeout: 10_000,
          // The claim sends several statements per round trip (src/queries/claim.ts); every
          // statement LuxJob sends binds its values, so this opens no injection path.
          multipleStatements: true,
        },
        pool: {
          min: 0,
          max: 10,
          // Under REPEATABLE READ a FOR UPDATE scan also takes gap locks, which is how claims
          // and inserts deadlock on MySQL; READ COMMITTED locks only the rows it claims.
          afterCreate: runOnConnect('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED'),
        },
        acquireConnectionTimeout: 10_000,
      },
    };
  }
  if (scheme === 'postgres' || scheme === 'postgresql' || scheme === 'pg') {
    const schema = parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    if (scheme === 'pg') parsed.protocol = 'postgres:';
    return {
      dialect: 'pg',
      schema,
      config: {
        client: 'pg',
        connection: {
          connectionString: parsed.toString(),
          connectionTimeoutMillis: 10_000,
          // ids are BIGINT (int8); pg returns int8 as a string unless told otherwise, per client.
          types: {
            getTypeParser: (oid: number, format?: string) =>
              oid === 20 ? (v: string) => Number(v) : pgDefaultParser(oid, format),
          },
        } as Knex.PgConnectionConfig,
        searchPath: schema ? [schema] : undefined,
        pool: {
          min: 0,
          max: 10,
          // A queue's row counts swing from empty to a burst of thousands faster than autovacuum
          // re-analyzes, and with stale statistics the planner fetched every waiting row through a
          // bitmap scan and sorted them for each claim (50 ms at 150k waiting rows) instead of
          // walking lux_jobs_claim in order and stopping at LIMIT (0.1 ms). No LuxJob query needs
          // a bitmap scan. (Sorts off also fixed the claim but sent the recovery query down the
          // whole primary key: 8 → 115 ms at a million rows.) A SET rather than the `options`
          // startup parameter, which PgBouncer and hosted poolers refuse.
          afterCreate: runOnConnect('SET enable_bitmapscan = off'),
        },
        acquireConnectionTimeout: 10_000,
      },
    };
  }
  throw new ConfigError(
    `database URL scheme "${scheme}:" is not supported: use sqlite:, mysql:, mariadb:, postgres: or postgresql:`,
  );
}

let pgTypes: typeof import('pg').types | undefined;

function pgDefaultParser(oid: number, format?: string): (v: string) => unknown {
  // Loaded lazily so a SQLite-only install never needs pg at run time; kept, as pg asks per column of every result.
  pgTypes ??= (require('pg') as typeof import('pg')).types;
  return pgTypes.getTypeParser(oid, (format ?? 'text') as 'text');
}

/** knex prints pool errors itself; LuxJob reports them once, explained (explainDatabaseError). */
const QUIET_KNEX_LOG = { warn() {}, error() {}, deprecate() {}, debug() {} };

export function openDatabase(url: string): Database {
  const { config: base, dialect, schema } = knexConfigFromUrl(url);
  const config = { ...base, log: QUIET_KNEX_LOG };
  if (dialect === 'sqlite') {
    const file = (config.connection as { filename: string }).filename;
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  }
  return { knex: knexFactory(config), dialect, safeUrl: maskPassword(url), schema };
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08003',
  '08006',
]);

const CONFLICT_CODES = new Set([
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  '40P01', // deadlock_detected
  '40001', // serialization_failure
  '55P03', // lock_not_available
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_LOCKED',
]);

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : '';
}

/** Lost connection, server gone, pool starved: worth retrying later, not a bug. */
export function isConnectionError(err: unknown): boolean {
  if (CONNECTION_CODES.has(errorCode(err))) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /Connection terminated|Timeout acquiring a connection|connect ECONNREFUSED|Connection lost|socket hang up|read ECONNRESET|The server closed the connection|Client has encountered a connection error|Cannot enqueue|closed state|terminating connection/i.test(
    message,
  );
}

/** Deadlocks, lock waits, SQLITE_BUSY: the statement can simply run again. */
export function isConflictError(err: unknown): boolean {
  return CONFLICT_CODES.has(errorCode(err));
}

/** A unique index refused the row (used by MySQL inserts that may duplicate a key). */
export function isDuplicateKey(err: unknown): boolean {
  return errorCode(err) === 'ER_DUP_ENTRY';
}

export function isTransientError(err: unknown): boolean {
  return isConnectionError(err) || isConflictError(err);
}

/**
 * Runs `fn` again when it fails with a deadlock or lock-wait error (MySQL and
 * SQLite produce these under concurrent claims and inserts); anything else
 * propagates at once.
 */
export async function retryConflicts<T>(fn: () => Promise<T>, attempts = 8): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isConflictError(err) || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** attempt) * Math.random()));
    }
  }
}

const MISSING_TABLE = /no such table|doesn't exist|does not exist|ER_NO_SUCH_TABLE|42P01/i;

/**
 * Turns a raw driver error into one an operator can act on: a missing table
 * becomes "run luxjob migrate", a refused connection names the host.
 */
export function explainDatabaseError(err: unknown, db: Pick<Database, 'safeUrl'>): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const code = errorCode(err);
  if (code === 'ER_NO_SUCH_TABLE' || code === '42P01' || MISSING_TABLE.test(err.message)) {
    return new SchemaMissingError(`the LuxJob tables are missing in ${db.safeUrl}`, { cause: err });
  }
  if (code === 'ER_ACCESS_DENIED_ERROR' || code === '28P01' || code === '28000') {
    return new DatabaseUnavailableError(
      `the database at ${db.safeUrl} refused the credentials (${err.message}): check the user and password in DATABASE_URL`,
      { cause: err },
    );
  }
  if (code === 'ER_BAD_DB_ERROR' || code === '3D000') {
    return new DatabaseUnavailableError(
      `the database named in ${db.safeUrl} does not exist (${err.message}): create it first`,
      { cause: err },
    );
  }
  if (isConnectionError(err)) {
    return new DatabaseUnavailableError(
      `cannot reach the database at ${db.safeUrl} (${err.message}): is the server running and the URL right?`,
      { cause: err },
    );
  }
  return err;
}

/** Reads a time column back as a Date whatever the driver returned (SQLite stores epoch ms). */
export function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  if (typeof value === 'bigint') return new Date(Number(value));
  if (typeof value === 'string') {
    if (/^\d+$/.test(value)) return new Date(Number(value));
    return new Date(value);
  }
  return null;
}
