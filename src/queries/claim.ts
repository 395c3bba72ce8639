import type { Database } from '../db';
import { retryConflicts } from '../db';
import { type Finish, finishCte, lostFrom, mysqlFinish, writeFinishes } from './finish';
import { type ClaimedJob, toClaimedJob } from './row';
import { execute, transaction, withMysqlBatches } from './statements';

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

// SKIP LOCKED lets concurrent claimers take different rows instead of queueing on each other's.
const CLAIM_PG = `UPDATE lux_jobs SET ${MARK_RUNNING} WHERE id IN (SELECT id ${DUE} FOR UPDATE SKIP LOCKED) RETURNING ${COLUMNS}`;
// SQLite has one writer at a time (the file lock), so no SKIP LOCKED is needed.
const CLAIM_SQLITE = `UPDATE lux_jobs SET ${MARK_RUNNING} WHERE id IN (SELECT id ${DUE}) RETURNING ${COLUMNS}`;
// MySQL/MariaDB have no UPDATE … RETURNING: this locks the rows, an UPDATE by id follows.
const LOCK_MYSQL = `SELECT ${COLUMNS} ${DUE} FOR UPDATE SKIP LOCKED`;

/** The statement that picks due rows, per dialect; parameters: supervisor, lease, now, now (not MySQL), now, limit. */
export const CLAIM_STATEMENTS = { pg: CLAIM_PG, sqlite: CLAIM_SQLITE, mysql: LOCK_MYSQL } as const;

function byRunOrder(a: Record<string, unknown>, b: Record<string, unknown>): number {
  return Number(a.priority) - Number(b.priority) || Number(a.id) - Number(b.id);
}

export interface ClaimResult {
  jobs: ClaimedJob[];
  /** Ids of `finishes` this supervisor no longer held (recovered elsewhere). */
  lost: number[];
}

/**
 * Claims up to `limit` due rows for this supervisor, in one short transaction,
 * and writes `finishes` (runs that just ended) in the same commit: one round
 * trip per cycle on PostgreSQL instead of two. The row locks are what keep
 * several supervisors from running a job twice.
 */
export async function claimJobs(
  db: Database,
  req: ClaimRequest,
  finishes: Finish[] = [],
): Promise<ClaimResult> {
  const mark = [req.supervisorId, req.leaseUntil, req.now, req.now];
  const claimed = (rows: Record<string, unknown>[]) =>
    rows.sort(byRunOrder).map((row) => toClaimedJob(row, req.now));
  if (db.dialect === 'pg') {
    if (finishes.length === 0) {
      const { rows } = await execute(db, CLAIM_PG, [...mark, req.now, req.limit]);
      return { jobs: claimed(rows), lost: [] };
    }
    // One statement: the finished rows are running (queued = 0), so the claim cannot see them.
    const fin = finishCte('pg', finishes, req.now, req.supervisorId);
    const { rows } = await execute(
      db,
      `WITH ${fin.values}, fin AS (${fin.update}), claimed AS (${CLAIM_PG})
       SELECT true AS claimed, ${COLUMNS} FROM claimed
       UNION ALL SELECT false, id, NULL::varchar, NULL::text, NULL::int, NULL::int, NULL::timestamptz, NULL::varchar FROM fin`,
      [...fin.params, ...mark, req.now, req.limit],
    );
    return {
      jobs: claimed(rows.filter((r) => r.claimed)),
      lost: lostFrom(
        finishes,
        rows.filter((r) => !r.claimed),
      ),
    };
  }
  if (db.dialect === 'sqlite') {
    return retryConflicts(async () => {
      if (finishes.length === 0)
        return {
          jobs: claimed((await execute(db, CLAIM_SQLITE, [...mark, req.now, req.limit])).rows),
          lost: [],
        };
      return transaction(db, async (exec) => {
        const lost = await writeFinishes('sqlite', exec, req.supervisorId, finishes, req.now);
        const { rows } = await exec(CLAIM_SQLITE, [...mark, req.now, req.limit]);
        return { jobs: claimed(rows), lost };
      });
    });
  }
  // MySQL/MariaDB have no UPDATE … RETURNING: lock with SKIP LOCKED, then update by primary key,
  // in a transaction kept tiny because long ones on this index deadlock with inserts. Statements
  // travel in two round trips (BEGIN, finish, lock | claim, COMMIT) instead of five.
  return retryConflicts(() =>
    withMysqlBatches(db, async (batch) => {
      const fin = finishes.length > 0 ? mysqlFinish(finishes, req.now, req.supervisorId) : undefined;
      try {
        const first = await batch(`START TRANSACTION; ${fin ? `${fin.sql}; ` : ''}${LOCK_MYSQL}`, [
          ...(fin?.params ?? []),
          req.now,
          req.limit,
        ]);
        const rows = first[first.length - 1] as Record<string, unknown>[];
        const finished = fin ? Number((first[1] as { affectedRows: number }).affectedRows) : 0;
        const ids = rows.map((r) => Number(r.id));
        const statements: string[] = [];
        const params: unknown[] = [];
        // Only when a result was not ours to write (a lease lost meanwhile): which ones did we write?
        const checkLost = finished !== finishes.length;
        if (checkLost) {
          const batchIds = finishes.map((f) => f.id);
          statements.push(
            `SELECT id FROM lux_jobs WHERE id IN (${batchIds.map(() => '?').join(',')}) AND locked_by IS NULL AND updated_at = ?`,
          );
          params.push(...batchIds, req.now);
        }
        if (ids.length > 0) {
          statements.push(
            `UPDATE lux_jobs SET ${MARK_RUNNING} WHERE id IN (${ids.map(() => '?').join(',')})`,
          );
          params.push(...mark, ...ids);
        }
        const second = await batch([...statements, 'COMMIT'].join('; '), params);
        const lost = checkLost ? lostFrom(finishes, second[0] as Record<string, unknown>[]) : [];
        return { jobs: claimed(rows), lost };
      } catch (err) {
        await batch('ROLLBACK', []).catch(() => undefined);
        throw err;
      }
    }),
  );
}
