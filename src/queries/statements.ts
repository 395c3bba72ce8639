/**
 * The hot path (claim, finish) talks to the drivers directly, through knex's
 * own connection pool. knex prepares every statement anew and adds about
 * 0.2 ms to each query; here a statement is prepared once per connection and
 * reused: a cached better-sqlite3 Statement, a named pg prepared statement,
 * mysql2's execute() cache. SQL is written with `?` placeholders.
 */
import crypto from 'node:crypto';
import type { Database } from '../db';

export type Row = Record<string, unknown>;
export interface Result {
  rows: Row[];
  /** Rows changed (or matched, on MySQL) by a write. */
  affected: number;
}

interface SqliteStatement {
  reader: boolean;
  all(...params: unknown[]): Row[];
  run(...params: unknown[]): { changes: number };
}
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
}
interface PgConnection {
  query(config: {
    name: string;
    text: string;
    values: unknown[];
  }): Promise<{ rows: Row[]; rowCount: number | null }>;
}
interface MysqlConnection {
  execute(sql: string, params: unknown[], cb: (err: Error | null, result: unknown) => void): void;
  query(sql: string, cb: (err: Error | null) => void): void;
}

const sqliteStatements = new WeakMap<object, Map<string, SqliteStatement>>();
const pgText = new Map<string, { name: string; text: string }>();

function pgStatement(sql: string): { name: string; text: string } {
  let prepared = pgText.get(sql);
  if (!prepared) {
    let n = 0;
    prepared = {
      name: `luxjob_${crypto.createHash('sha1').update(sql).digest('hex').slice(0, 16)}`,
      text: sql.replace(/\?/g, () => `$${++n}`),
    };
    pgText.set(sql, prepared);
  }
  return prepared;
}

/** better-sqlite3 binds numbers, strings and buffers only. */
function sqliteValue(value: unknown): unknown {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

async function run(
  dialect: Database['dialect'],
  conn: unknown,
  sql: string,
  params: unknown[],
): Promise<Result> {
  if (dialect === 'sqlite') {
    const c = conn as SqliteConnection;
    let cache = sqliteStatements.get(c);
    if (!cache) {
      cache = new Map();
      sqliteStatements.set(c, cache);
    }
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = c.prepare(sql);
      cache.set(sql, stmt);
    }
    const values = params.map(sqliteValue);
    if (stmt.reader) {
      const rows = stmt.all(...values);
      return { rows, affected: rows.length };
    }
    return { rows: [], affected: stmt.run(...values).changes };
  }
  if (dialect === 'pg') {
    const { name, text } = pgStatement(sql);
    const result = await (conn as PgConnection).query({ name, text, values: params });
    return { rows: result.rows, affected: result.rowCount ?? 0 };
  }
  return new Promise((resolve, reject) => {
    (conn as MysqlConnection).execute(sql, params, (err, result) => {
      if (err) return reject(err);
      if (Array.isArray(result)) return resolve({ rows: result as Row[], affected: result.length });
      resolve({ rows: [], affected: Number((result as { affectedRows?: number }).affectedRows ?? 0) });
    });
  });
}

/** Runs one statement on a pooled connection. */
export async function execute(db: Database, sql: string, params: unknown[] = []): Promise<Result> {
  const conn = await db.knex.client.acquireConnection();
  try {
    return await run(db.dialect, conn, sql, params);
  } finally {
    await db.knex.client.releaseConnection(conn);
  }
}

/** Runs `fn` in a transaction on one connection (MySQL's two-statement claim needs it). */
export async function transaction<T>(
  db: Database,
  fn: (exec: (sql: string, params?: unknown[]) => Promise<Result>) => Promise<T>,
): Promise<T> {
  const conn = await db.knex.client.acquireConnection();
  const plain = (sql: string) =>
    db.dialect === 'mysql'
      ? new Promise<void>((resolve, reject) =>
          (conn as MysqlConnection).query(sql, (err) => (err ? reject(err) : resolve())),
        )
      : run(db.dialect, conn, sql, []).then(() => undefined);
  try {
    await plain(db.dialect === 'sqlite' ? 'BEGIN IMMEDIATE' : 'BEGIN');
    try {
      const result = await fn((sql, params = []) => run(db.dialect, conn, sql, params));
      await plain('COMMIT');
      return result;
    } catch (err) {
      await plain('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await db.knex.client.releaseConnection(conn);
  }
}

/**
 * MySQL only: several statements in one round trip (text protocol, values
 * escaped by mysql2), one result per statement. The claim uses it to go from
 * five round trips to two.
 */
export async function withMysqlBatches<T>(
  db: Database,
  fn: (batch: (sql: string, params: unknown[]) => Promise<unknown[]>) => Promise<T>,
): Promise<T> {
  const conn = (await db.knex.client.acquireConnection()) as {
    query(sql: string, params: unknown[], cb: (err: Error | null, result: unknown) => void): void;
  };
  try {
    return await fn(
      (sql, params) =>
        new Promise((resolve, reject) =>
          conn.query(sql, params, (err, result) => (err ? reject(err) : resolve(result as unknown[]))),
        ),
    );
  } finally {
    await db.knex.client.releaseConnection(conn);
  }
}
