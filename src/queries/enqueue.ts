import { JOBS_TABLE } from '../constants';
import type { Database } from '../db';
import { isDuplicateKey, retryConflicts } from '../db';
import type { AddResult } from '../payload';
import { transaction } from './statements';

export interface NewJob {
  name: string;
  /** Already-encoded JSON text. */
  opts: string;
  runAt: Date;
  priority: number;
  key?: string;
}

function rowFor(job: NewJob, now: Date) {
  return {
    name: job.name,
    opts: job.opts,
    priority: job.priority,
    run_at: job.runAt,
    status_sid: 's',
    queued: 1,
    retry_count: 0,
    unique_key: job.key ?? null,
    created_at: now,
    updated_at: now,
  };
}

/**
 * Inserts one job. With a key, the unique index on `unique_key` makes the
 * insert a no-op while a pending job holds that key (the key is released when
 * a job ends), and the pending job's id is returned instead.
 */
export async function insertJob(db: Database, job: NewJob, now = new Date()): Promise<AddResult> {
  const row = rowFor(job, now);
  if (!job.key) {
    return retryConflicts(async () => {
      if (db.dialect === 'mysql') {
        const [id] = await db.knex(JOBS_TABLE).insert(row);
        return { id: Number(id), created: true };
      }
      const [inserted] = await db.knex(JOBS_TABLE).insert(row).returning('id');
      return { id: Number((inserted as { id: number }).id), created: true };
    });
  }
  // The pending holder of the key may finish between our insert and our look-up; go round again then.
  for (let round = 0; ; round++) {
    const result = await retryConflicts(() => insertUnlessKeyed(db, row));
    if (result) return result;
    const existing = await db.knex(JOBS_TABLE).select('id').where('unique_key', job.key).first();
    if (existing) return { id: Number(existing.id), created: false };
    if (round > 5) throw new Error(`could not add job with key "${job.key}": the key kept changing hands`);
  }
}

async function insertUnlessKeyed(
  db: Database,
  row: ReturnType<typeof rowFor>,
): Promise<AddResult | undefined> {
  if (db.dialect === 'mysql') {
    // No ON CONFLICT DO NOTHING here; INSERT IGNORE would hide other errors and, with
    // mysql2's FOUND_ROWS flag, affectedRows cannot tell an insert from a duplicate.
    try {
      const [id] = await db.knex(JOBS_TABLE).insert(row);
      return { id: Number(id), created: true };
    } catch (err) {
      if (isDuplicateKey(err)) return undefined;
      throw err;
    }
  }
  const inserted = await db.knex(JOBS_TABLE).insert(row).onConflict('unique_key').ignore().returning('id');
  const first = inserted[0] as { id: number } | undefined;
  return first ? { id: Number(first.id), created: true } : undefined;
}

/**
 * Inserts many key-less jobs in a few multi-row statements (bulk enqueue).
 * Returns how many rows were written.
 */
export async function insertJobs(db: Database, jobs: NewJob[], now = new Date()): Promise<number> {
  if (jobs.length === 0) return 0;
  if (db.dialect === 'pg') {
    // Four array parameters instead of ten per row: pg serialises 50,000 separate values far
    // slower. Chunked so no single message nears PostgreSQL's 1 GB limit; one transaction.
    const chunk = 50_000;
    await transaction(db, async (exec) => {
      for (let i = 0; i < jobs.length; i += chunk) {
        const part = jobs.slice(i, i + chunk);
        await exec(
          `INSERT INTO lux_jobs (name, opts, priority, run_at, status_sid, queued, retry_count, created_at, updated_at)
           SELECT n, o, p, r, 's', 1, 0, ?, ? FROM unnest(?::varchar[], ?::text[], ?::int[], ?::timestamptz[]) AS t(n, o, p, r)`,
          [
            now,
            now,
            part.map((j) => j.name),
            part.map((j) => j.opts),
            part.map((j) => j.priority),
            part.map((j) => j.runAt.toISOString()),
          ],
        );
      }
    });
    return jobs.length;
  }
  // SQLite caps bound parameters per statement (32766 in current builds); 10 columns × 500 rows stays well under.
  const chunk = 500;
  await db.knex.transaction(async (trx) => {
    for (let i = 0; i < jobs.length; i += chunk) {
      await trx(JOBS_TABLE).insert(jobs.slice(i, i + chunk).map((job) => rowFor(job, now)));
    }
  });
  return jobs.length;
}
