import type { StatusSid } from '../constants';
import { toDate } from '../db';

/** A lux_jobs row as the public API returns it. */
export interface JobRecord {
  id: number;
  name: string;
  opts: string;
  priority: number;
  runAt: Date | null;
  status: StatusSid;
  retryCount: number;
  response: string | null;
  uniqueKey: string | null;
  schedule: string | null;
  lockedBy: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** What the supervisor needs of a claimed row to run it and to record its end. */
export interface ClaimedJob {
  id: number;
  name: string;
  opts: string;
  retryCount: number;
  runAt: Date | null;
  schedule: string | null;
  /** When this run was claimed: the row's started_at. */
  startedAt: Date;
}

type RawRow = Record<string, unknown>;

export function toJobRecord(row: RawRow): JobRecord {
  return {
    id: Number(row.id),
    name: String(row.name),
    opts: String(row.opts),
    priority: Number(row.priority),
    runAt: toDate(row.run_at),
    status: String(row.status_sid) as StatusSid,
    retryCount: Number(row.retry_count),
    response: row.response === null || row.response === undefined ? null : String(row.response),
    uniqueKey: (row.unique_key as string | null) ?? null,
    schedule: (row.schedule as string | null) ?? null,
    lockedBy: (row.locked_by as string | null) ?? null,
    leaseUntil: toDate(row.lease_until),
    createdAt: toDate(row.created_at) as Date,
    updatedAt: toDate(row.updated_at) as Date,
    startedAt: toDate(row.started_at),
    finishedAt: toDate(row.finished_at),
  };
}

export function toClaimedJob(row: RawRow, startedAt: Date): ClaimedJob {
  return {
    id: Number(row.id),
    name: String(row.name),
    opts: String(row.opts),
    retryCount: Number(row.retry_count),
    runAt: toDate(row.run_at),
    schedule: (row.schedule as string | null) ?? null,
    startedAt,
  };
}
