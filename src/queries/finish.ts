import type { Database } from '../db';
import { retryConflicts } from '../db';
import type { RowUpdate } from '../transitions';
import { execute } from './statements';

export interface Finish {
  id: number;
  update: RowUpdate;
}

/** One finished run as bound values, in the column order of every statement below. */
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
  ];
}

const COLUMNS = 'id, status_sid, queued, run_at, retry_count, response, finished_at, release_key';
const ASSIGN = (j: string, v: string) => `
  status_sid = ${v}.status_sid, queued = ${v}.queued, run_at = ${v}.run_at, retry_count = ${v}.retry_count,
  response = COALESCE(${v}.response, ${j}.response), finished_at = COALESCE(${v}.finished_at, ${j}.finished_at),
  unique_key = CASE WHEN ${v}.release_key = 1 THEN NULL ELSE ${j}.unique_key END,
  updated_at = ?, locked_by = NULL, lease_until = NULL`;

/**
 * Records how runs ended: a whole batch in one statement (one round trip, one
 * commit). Each row is only touched while this supervisor still holds it: a
 * row whose lease expired and was recovered elsewhere is left alone, and its
 * id is returned so the caller can say so.
 */
export async function finishJobs(
  db: Database,
  supervisorId: string,
  finishes: Finish[],
  now = new Date(),
): Promise<{ lost: number[] }> {
  if (finishes.length === 0) return { lost: [] };
  const bound = finishes.flatMap(values);
  const updated = await retryConflicts(async () => {
    if (db.dialect === 'mysql') {
      // MariaDB cannot name the columns of a VALUES list: a UNION of SELECTs carries the batch.
      const row = `SELECT ${COLUMNS.split(', ')
        .map(() => '?')
        .join(', ')}`;
      const first = `SELECT ${COLUMNS.split(', ')
        .map((c) => `? AS ${c}`)
        .join(', ')}`;
      const batch = [first, ...finishes.slice(1).map(() => row)].join(' UNION ALL ');
      const sql = `UPDATE lux_jobs AS j JOIN (${batch}) AS v ON j.id = v.id
        SET ${ASSIGN('j', 'v').replace(/(^|, |\n\s*)(\w+) =/g, '$1j.$2 =')}
        WHERE j.locked_by = ? AND j.status_sid = 'r'`;
      const { affected } = await execute(db, sql, [...bound, now, supervisorId]);
      return affected === finishes.length ? finishes.map((f) => f.id) : undefined;
    }
    // PostgreSQL and SQLite: UPDATE … FROM a VALUES list, returning the rows it really changed.
    const tuple = `(${COLUMNS.split(', ')
      .map(() => '?')
      .join(', ')})`;
    const typed =
      db.dialect === 'pg'
        ? '(?::bigint, ?::varchar, ?::int, ?::timestamptz, ?::int, ?::text, ?::timestamptz, ?::int)'
        : tuple;
    const list = [typed, ...finishes.slice(1).map(() => tuple)].join(', ');
    const sql = `WITH v(${COLUMNS}) AS (VALUES ${list})
      UPDATE lux_jobs SET ${ASSIGN('lux_jobs', 'v')}
      FROM v WHERE lux_jobs.id = v.id AND lux_jobs.locked_by = ? AND lux_jobs.status_sid = 'r'
      RETURNING lux_jobs.id`;
    const { rows } = await execute(db, sql, [...bound, now, supervisorId]);
    return rows.map((r) => Number(r.id));
  });
  if (updated === undefined) return { lost: await notHeldBy(db, supervisorId, finishes) };
  const done = new Set(updated);
  return { lost: finishes.map((f) => f.id).filter((id) => !done.has(id)) };
}

/** Which of the batch this supervisor no longer holds (MySQL reports only a count). */
async function notHeldBy(db: Database, supervisorId: string, finishes: Finish[]): Promise<number[]> {
  const ids = finishes.map((f) => f.id);
  const held = await db.knex('lux_jobs').select('id').whereIn('id', ids).where({ locked_by: supervisorId });
  const stillHeld = new Set(held.map((r: { id: number }) => Number(r.id)));
  return ids.filter((id) => !stillHeld.has(id));
}
