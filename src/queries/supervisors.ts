import { JOBS_TABLE, SUPERVISORS_TABLE } from '../constants';
import type { Database } from '../db';
import { toDate } from '../db';

export interface SupervisorRecord {
  id: string;
  host: string;
  pid: number;
  workers: number;
  version: string;
  startedAt: Date;
  heartbeatAt: Date;
}

export async function registerSupervisor(db: Database, s: SupervisorRecord): Promise<void> {
  await db.knex(SUPERVISORS_TABLE).insert({
    id: s.id,
    host: s.host,
    pid: s.pid,
    workers: s.workers,
    version: s.version,
    started_at: s.startedAt,
    heartbeat_at: s.heartbeatAt,
  });
}

/**
 * Proves this supervisor alive and extends the lease of every row it runs.
 * Returns false when its registry row is gone (it was presumed dead and
 * pruned), so the caller can register again.
 */
export async function heartbeat(db: Database, id: string, now: Date, leaseUntil: Date): Promise<boolean> {
  const alive = await db.knex(SUPERVISORS_TABLE).where({ id }).update({ heartbeat_at: now });
  await db.knex(JOBS_TABLE).where({ locked_by: id, status_sid: 'r' }).update({ lease_until: leaseUntil });
  return Number(alive) > 0;
}

export async function deregisterSupervisor(db: Database, id: string): Promise<void> {
  await db.knex(SUPERVISORS_TABLE).where({ id }).delete();
}

/** Registry rows whose heartbeat is older than `before`: their supervisors are gone. */
export async function pruneSupervisors(db: Database, before: Date): Promise<number> {
  return Number(await db.knex(SUPERVISORS_TABLE).where('heartbeat_at', '<', before).delete());
}

export async function listSupervisors(db: Database): Promise<SupervisorRecord[]> {
  const rows = await db.knex(SUPERVISORS_TABLE).select('*').orderBy('started_at');
  return rows.map((r: Record<string, unknown>) => ({
    id: String(r.id),
    host: String(r.host),
    pid: Number(r.pid),
    workers: Number(r.workers),
    version: String(r.version),
    startedAt: toDate(r.started_at) as Date,
    heartbeatAt: toDate(r.heartbeat_at) as Date,
  }));
}
