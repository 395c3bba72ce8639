import { JOBS_TABLE } from '../constants';
import type { Database } from '../db';
import { toDate } from '../db';
import { type ClaimedJob, toClaimedJob } from './row';

export interface ExpiredJob extends ClaimedJob {
  lockedBy: string;
}

/**
 * Running rows whose lease ran out: their supervisor stopped heartbeating
 * (killed, frozen, cut off). Leases are short and renewed by the heartbeat, so
 * a live supervisor's long job never shows up here.
 */
export async function findExpiredJobs(
  db: Database,
  now: Date,
  self: string,
  limit = 100,
): Promise<ExpiredJob[]> {
  const rows = await db
    .knex(JOBS_TABLE)
    .select('id', 'name', 'opts', 'retry_count', 'run_at', 'schedule', 'locked_by', 'started_at')
    .where('status_sid', 'r')
    .where('lease_until', '<', now)
    // Our own rows are running here right now, whatever their lease says.
    .whereNot('locked_by', self)
    .orderBy('id')
    .limit(limit);
  return rows.map((r: Record<string, unknown>) => ({
    ...toClaimedJob(r, toDate(r.started_at) ?? now),
    lockedBy: String(r.locked_by),
  }));
}

/**
 * Takes over one expired row so that exactly one recoverer writes its failure:
 * the update only matches while the row is still running under the old
 * holder with an expired lease.
 */
export async function takeOverExpired(
  db: Database,
  job: ExpiredJob,
  recovererId: string,
  now: Date,
  leaseUntil: Date,
): Promise<boolean> {
  const changed = await db
    .knex(JOBS_TABLE)
    .where({ id: job.id, status_sid: 'r', locked_by: job.lockedBy })
    .where('lease_until', '<', now)
    // A fresh lease, or a third supervisor could take it over again before our failure is written.
    .update({ locked_by: recovererId, lease_until: leaseUntil, updated_at: now });
  return Number(changed) === 1;
}

/** Rows this supervisor holds as running, with when they were claimed. */
export async function findOwnRunning(
  db: Database,
  self: string,
): Promise<Array<{ id: number; startedAt: Date | null }>> {
  const rows = await db
    .knex(JOBS_TABLE)
    .select('id', 'started_at')
    .where({ status_sid: 'r', locked_by: self });
  return rows.map((r: Record<string, unknown>) => ({ id: Number(r.id), startedAt: toDate(r.started_at) }));
}

/**
 * Hands rows back to the queue untouched (retry_count unchanged): they were
 * claimed by this supervisor but never reached a worker, because the claim
 * committed while its reply was lost to a cut connection.
 */
export async function putBackOrphans(db: Database, self: string, ids: number[], now: Date): Promise<number> {
  if (ids.length === 0) return 0;
  return Number(
    await db.knex(JOBS_TABLE).whereIn('id', ids).where({ status_sid: 'r', locked_by: self }).update({
      status_sid: 's',
      queued: 1,
      run_at: now,
      locked_by: null,
      lease_until: null,
      updated_at: now,
    }),
  );
}
