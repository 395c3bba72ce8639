import type { ResolvedJob } from '../catalogue';
import { JOBS_TABLE } from '../constants';
import type { Database } from '../db';
import { isDuplicateKey, retryConflicts } from '../db';
import { firstOccurrence, formatSchedule } from '../schedule';

export const recurringKey = (name: string) => `recurring:${name}`;

export interface InitReport {
  created: string[];
  rescheduled: string[];
  removed: string[];
}

/**
 * One row per recurring job, keyed by 'recurring:<name>' under a unique index,
 * so any number of supervisors calling this at once create exactly one row.
 * A definition whose schedule changed moves its waiting row to the new
 * schedule; a job that stopped being recurring loses its waiting row.
 */
export async function initRecurring(
  db: Database,
  jobs: Iterable<ResolvedJob>,
  now = new Date(),
): Promise<InitReport> {
  const report: InitReport = { created: [], rescheduled: [], removed: [] };
  for (const job of jobs) {
    const key = recurringKey(job.name);
    if (!job.schedule) {
      const removed = await db.knex(JOBS_TABLE).where({ unique_key: key, queued: 1 }).delete();
      if (Number(removed) > 0) report.removed.push(job.name);
      continue;
    }
    const schedule = formatSchedule(job.schedule);
    const runAt = firstOccurrence(job.schedule, now);
    const row = {
      name: job.name,
      opts: '{}',
      priority: 0,
      run_at: runAt,
      status_sid: 's',
      queued: 1,
      retry_count: 0,
      unique_key: key,
      schedule,
      created_at: now,
      updated_at: now,
    };
    const inserted = await retryConflicts(() =>
      db.dialect === 'mysql'
        ? insertIgnoreMysql(db, row)
        : db
            .knex(JOBS_TABLE)
            .insert(row)
            .onConflict('unique_key')
            .ignore()
            .returning('id')
            .then((r) => r.length),
    );
    if (inserted === 1) {
      report.created.push(job.name);
      continue;
    }
    // A waiting row follows the new schedule now; a running one records it and follows it when it finishes.
    const moved = await retryConflicts(() =>
      db
        .knex(JOBS_TABLE)
        .where({ unique_key: key })
        .whereNot('schedule', schedule)
        .update({ schedule, updated_at: now })
        .then(async (changed) => {
          if (Number(changed) > 0) {
            await db.knex(JOBS_TABLE).where({ unique_key: key, queued: 1 }).update({ run_at: runAt });
          }
          return Number(changed);
        }),
    );
    if (moved > 0) report.rescheduled.push(job.name);
  }
  return report;
}

/** MySQL has no ON CONFLICT DO NOTHING; a duplicate-key error is the honest signal. */
async function insertIgnoreMysql(db: Database, row: Record<string, unknown>): Promise<number> {
  try {
    await db.knex(JOBS_TABLE).insert(row);
    return 1;
  } catch (err) {
    if (isDuplicateKey(err)) return 0;
    throw err;
  }
}
