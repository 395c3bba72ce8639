import type { Database } from '../db';
import { retryConflicts } from '../db';
import { type ClaimedJob, toClaimedJob } from './row';
import { execute, transaction } from './statements';

export interface ClaimRequest {
  supervisorId: string;
  limit: number;
  now: Date;
  leaseUntil: Date;
}

const COLUMNS = 'id, name, opts, priority, retry_count, run_at, schedule';
const MARK_RUNNING =
  "status_sid = 'r', queued = 0, locked_by = ?, lease_until = ?, started_at = ?, updated_at = ?";
// Due rows in run order. `queued = 1` leads the index lux_jobs_claim, so the
// scan walks only waiting rows in (priority, run_at) order and stops at LIMIT.
const DUE = 'FROM lux_jobs WHERE queued = 1 AND run_at <= ? ORDER BY priority, run_at, id LIMIT ?';

function byRunOrder(a: Record<string, unknown>, b: Record<string, unknown>): number {
  return Number(a.priority) - Number(b.priority) || Number(a.id) - Number(b.id);
}

/**
 * Claims up to `limit` due rows for this supervisor, in one short transaction.
 * The row locks are what keep several supervisors from running a job twice.
 */
export async function claimJobs(db: Database, req: ClaimRequest): Promise<ClaimedJob[]> {
  const mark = [req.supervisorId, req.leaseUntil, req.now, req.now];
  if (db.dialect === 'pg') {
    // One round trip: SKIP LOCKED lets concurrent claimers take different rows instead of queueing on ours.
    const { rows } = await execute(
      db,
      `UPDATE lux_jobs SET ${MARK_RUNNING} WHERE id IN (SELECT id ${DUE} FOR UPDATE SKIP LOCKED) RETURNING ${COLUMNS}`,
      [...mark, req.now, req.limit],
    );
    return rows.sort(byRunOrder).map((row) => toClaimedJob(row, req.now));
  }
  if (db.dialect === 'sqlite') {
    // One statement is one write transaction in SQLite: the file lock serialises claimers, so no SKIP LOCKED is needed.
    const { rows } = await retryConflicts(() =>
      execute(db, `UPDATE lux_jobs SET ${MARK_RUNNING} WHERE id IN (SELECT id ${DUE}) RETURNING ${COLUMNS}`, [
        ...mark,
        req.now,
        req.limit,
      ]),
    );
    return rows.sort(byRunOrder).map((row) => toClaimedJob(row, req.now));
  }
  // MySQL/MariaDB have no UPDATE … RETURNING: lock with SKIP LOCKED, then update by primary key,
  // in a transaction kept tiny because long ones on this index deadlock with inserts.
  return retryConflicts(() =>
    transaction(db, async (exec) => {
      const { rows } = await exec(`SELECT ${COLUMNS} ${DUE} FOR UPDATE SKIP LOCKED`, [req.now, req.limit]);
      if (rows.length === 0) return [];
      const ids = rows.map((r) => Number(r.id));
      await exec(`UPDATE lux_jobs SET ${MARK_RUNNING} WHERE id IN (${ids.map(() => '?').join(',')})`, [
        ...mark,
        ...ids,
      ]);
      return rows.sort(byRunOrder).map((row) => toClaimedJob(row, req.now));
    }),
  );
}
