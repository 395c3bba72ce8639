import type { Database, Dialect } from '../db';
import { retryConflicts } from '../db';
import type { RowUpdate } from '../transitions';
import { execute, type Result, transaction } from './statements';

export interface Finish {
  id: number;
  /** The claim this result belongs to: a row claimed again since is not overwritten. */
  startedAt: Date;
  update: RowUpdate;
}

/**
 * The batch repeated at its end up to the next power of two. Every statement
 * text is prepared once per connection and kept (statements.ts), and a batch
 * of each size from 1 to 128 would be a statement of its own: 128 per kind per
 * connection, held by SQLite in the supervisor's memory, by PostgreSQL in each
 * backend, and by MariaDB against the server-wide max_prepared_stmt_count.
 * Repeats change nothing: a row takes one of identical updates, once.
 */
export function padToShape<T>(items: T[]): T[] {
  if (items.length === 0) return items;
  let size = 1;
  while (size < items.length) size *= 2;
  const padded = items.slice();
  while (padded.length < size) padded.push(items[items.length - 1]!);
  return padded;
}

/** One finished run as bound values, in the column order of COLUMNS. */
function values(f: Finish): unknown[] {
  const u = f.update;
  return [
    f.id,
    u.status_sid,
    u.queued,
    u.run_at,
    u.retry_count,
    u.response ?? null, // NULL keeps the previous response (a put-back has none)
    u.finished_at ?? null,
    u.unique_key === null ? 1 : 0, // 1 releases the dedup key
    f.startedAt,
  ];
}

const COLUMNS = [
  'id',
  'status_sid',
  'queued',
  'run_at',
  'retry_count',
  'response',
  'finished_at',
  'release_key',
  'started_at',
];
const PG_TYPES = [
  'bigint',
  'varchar',
  'int',
  'timestamptz',
  'int',
  'text',
  'timestamptz',
  'int',
  'timestamptz',
];

/** SET clause copying a batch row `v` onto `j`; only `updated_at` is bound. */
function assignments(j: string, v: string, prefix = ''): string {
  return [
    `${prefix}status_sid = ${v}.status_sid`,
    `${prefix}queued = ${v}.queued`,
    `${prefix}run_at = ${v}.run_at`,
    `${prefix}retry_count = ${v}.retry_count`,
    `${prefix}response = COALESCE(${v}.response, ${j}.response)`,
    `${prefix}finished_at = COALESCE(${v}.finished_at, ${j}.finished_at)`,
    `${prefix}unique_key = CASE WHEN ${v}.release_key = 1 THEN NULL ELSE ${j}.unique_key END`,
    `${prefix}updated_at = ?`,
    `${prefix}locked_by = NULL`,
    `${prefix}lease_until = NULL`,
  ].join(', ');
}

/**
 * PostgreSQL and SQLite: the batch as a `v` CTE and an `UPDATE … FROM v` that
 * returns the ids it really changed. `extra` lets the claim run in the same
 * statement (PostgreSQL).
 */
export function finishCte(dialect: Dialect, batch: Finish[], now: Date, supervisorId: string) {
  const finishes = padToShape(batch);
  const tuple = `(${COLUMNS.map(() => '?').join(', ')})`;
  const first = dialect === 'pg' ? `(${PG_TYPES.map((t) => `?::${t}`).join(', ')})` : tuple;
  const list = [first, ...finishes.slice(1).map(() => tuple)].join(', ');
  return {
    values: `v(${COLUMNS.join(', ')}) AS (VALUES ${list})`,
    update: `UPDATE lux_jobs SET ${assignments('lux_jobs', 'v')}
      FROM v WHERE lux_jobs.id = v.id AND lux_jobs.started_at = v.started_at
        AND lux_jobs.locked_by = ? AND lux_jobs.status_sid = 'r'
      RETURNING lux_jobs.id`,
    params: [...finishes.flatMap(values), now, supervisorId],
  };
}

/**
 * MariaDB/MySQL: no named VALUES lists, and an UPDATE joined to a derived
 * table costs twice as much there as picking each column's value by id:
 * `col = CASE id WHEN ? THEN ? … END`, on rows found by primary key.
 */
export function mysqlFinish(finishes: Finish[], now: Date, supervisorId: string) {
  const when = finishes.map(() => 'WHEN ? THEN ?').join(' ');
  const column = (name: string, value: string) =>
    `${name} = CASE id ${when.replaceAll('THEN ?', `THEN ${value}`)} END`;
  const sets = [
    column('status_sid', '?'),
    column('queued', '?'),
    column('run_at', '?'),
    column('retry_count', '?'),
    column('response', 'COALESCE(?, response)'),
    column('finished_at', 'COALESCE(?, finished_at)'),
    column('unique_key', 'IF(? = 1, NULL, unique_key)'),
  ];
  const rows = finishes.map(values);
  // Column i of the batch, as (id, value) pairs for its CASE.
  const pairs = (i: number) => rows.flatMap((row) => [row[0], row[i]]);
  const ids = finishes.map((f) => f.id);
  return {
    sql: `UPDATE lux_jobs SET ${sets.join(', ')}, updated_at = ?, locked_by = NULL, lease_until = NULL
      WHERE id IN (${ids.map(() => '?').join(', ')}) AND started_at = CASE id ${when} END
        AND locked_by = ? AND status_sid = 'r'`,
    params: [...[1, 2, 3, 4, 5, 6, 7].flatMap(pairs), now, ...ids, ...pairs(8), supervisorId],
  };
}

type Exec = (sql: string, params?: unknown[]) => Promise<Result>;

/**
 * Writes a batch inside a transaction the caller holds (the claim does, to
 * finish and claim in one commit). Returns the ids this supervisor no longer
 * held: their leases expired and another supervisor recovered them.
 */
export async function writeFinishes(
  dialect: Dialect,
  exec: Exec,
  supervisorId: string,
  finishes: Finish[],
  now: Date,
): Promise<number[]> {
  if (finishes.length === 0) return [];
  if (dialect === 'mysql') {
    // Prepared (mysql2's execute), so padded; the claim sends its batch as text and does not pad.
    const { sql, params } = mysqlFinish(padToShape(finishes), now, supervisorId);
    const { affected } = await exec(sql, params);
    if (affected === finishes.length) return [];
    // affectedRows is only a count: the rows written are those now free and stamped with this write.
    const ids = padToShape(finishes.map((f) => f.id));
    const written = await exec(
      `SELECT id FROM lux_jobs WHERE id IN (${ids.map(() => '?').join(', ')}) AND locked_by IS NULL AND updated_at = ?`,
      [...ids, now],
    );
    return lostFrom(finishes, written.rows);
  }
  const cte = finishCte(dialect, finishes, now, supervisorId);
  const { rows } = await exec(`WITH ${cte.values} ${cte.update}`, cte.params);
  return lostFrom(finishes, rows);
}

/** The batch's ids missing from the rows an update returned. */
export function lostFrom(finishes: Finish[], returned: Array<Record<string, unknown>>): number[] {
  const done = new Set(returned.map((r) => Number(r.id)));
  return finishes.map((f) => f.id).filter((id) => !done.has(id));
}

/**
 * Records how runs ended: a whole batch in one statement (one round trip, one
 * commit). Each row is only touched while this supervisor still holds it.
 */
export async function finishJobs(
  db: Database,
  supervisorId: string,
  finishes: Finish[],
  now = new Date(),
): Promise<{ lost: number[] }> {
  if (finishes.length === 0) return { lost: [] };
  const lost = await retryConflicts(() =>
    db.dialect === 'mysql'
      ? transaction(db, (exec) => writeFinishes('mysql', exec, supervisorId, finishes, now))
      : writeFinishes(db.dialect, (sql, params) => execute(db, sql, params), supervisorId, finishes, now),
  );
  return { lost };
}
