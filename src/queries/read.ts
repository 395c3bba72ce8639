import { JOBS_TABLE, type StatusSid } from '../constants';
import type { Database } from '../db';
import { type JobRecord, toJobRecord } from './row';

export interface ListFilter {
  status?: StatusSid;
  name?: string;
  limit?: number;
}

/** Newest first; what `luxjob list` and the dashboard show. */
export async function listJobs(db: Database, filter: ListFilter = {}): Promise<JobRecord[]> {
  const query = db
    .knex(JOBS_TABLE)
    .select('*')
    .orderBy('id', 'desc')
    .limit(filter.limit ?? 50);
  if (filter.status) query.where('status_sid', filter.status);
  if (filter.name) query.where('name', filter.name);
  return (await query).map(toJobRecord);
}

export async function getJob(db: Database, id: number): Promise<JobRecord | undefined> {
  const row = await db.knex(JOBS_TABLE).select('*').where({ id }).first();
  return row ? toJobRecord(row) : undefined;
}

/** Rows per status letter. */
export async function countByStatus(db: Database): Promise<Record<StatusSid, number>> {
  const counts: Record<StatusSid, number> = { s: 0, r: 0, f: 0, d: 0, x: 0 };
  const rows = await db.knex(JOBS_TABLE).select('status_sid').count({ n: '*' }).groupBy('status_sid');
  for (const row of rows as Array<{ status_sid: StatusSid; n: number | string }>)
    counts[row.status_sid] = Number(row.n);
  return counts;
}
