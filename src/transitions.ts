import type { StatusSid } from './constants';
import { type ErrorData, encodeFailure, type FailureKind } from './payload';
import type { ClaimedJob } from './queries/row';
import { nextOccurrence, parseSchedule, retryDelaySeconds } from './schedule';

/** How one run of a claimed job ended. */
export type Outcome =
  | { type: 'success'; response: string }
  | { type: 'failure'; kind: FailureKind; error: ErrorData }
  /** Shutdown interrupted it, or it was never started: run it again, and do not count a failure. */
  | { type: 'put-back'; started?: false };

export interface RetryPolicy {
  /** Retries allowed for this job (its own `retries`, else the configured maximum). */
  maxRetries: number;
  retryBaseWait: number;
}

/** The columns a finished run writes; the status model of DESIGN.md in one place. */
export interface RowUpdate {
  status_sid: StatusSid;
  queued: 0 | 1;
  run_at: Date | null;
  retry_count: number;
  response?: string;
  finished_at?: Date;
  /** Only ever cleared: a one-off job that ended releases its dedup key. */
  unique_key?: null;
}

export function transition(
  job: ClaimedJob,
  outcome: Outcome,
  ctx: { startedAt: Date; now: Date; policy: RetryPolicy },
): RowUpdate {
  const schedule = parseSchedule(job.schedule);
  const { now } = ctx;
  const next = () =>
    schedule ? nextOccurrence(schedule, { startedAt: ctx.startedAt, scheduledAt: job.runAt, now }) : null;

  if (outcome.type === 'put-back') {
    // Back in its old place in the queue (a claimed row was due, so its run_at is past).
    const runAt = job.runAt && job.runAt < now ? job.runAt : now;
    return { status_sid: 's', queued: 1, run_at: runAt, retry_count: job.retryCount };
  }
  if (outcome.type === 'success') {
    if (schedule) {
      return {
        status_sid: 'd',
        queued: 1,
        run_at: next(),
        retry_count: 0,
        response: outcome.response,
        finished_at: now,
      };
    }
    return {
      status_sid: 'd',
      queued: 0,
      run_at: null,
      retry_count: job.retryCount,
      response: outcome.response,
      finished_at: now,
      unique_key: null,
    };
  }
  const response = encodeFailure(outcome.kind, outcome.error);
  if (job.retryCount < ctx.policy.maxRetries) {
    const retry = job.retryCount + 1;
    // A lost supervisor is the host's failure, not the job's: run again at once, but still
    // count it, so a job that keeps taking its host down ends in x instead of looping.
    const wait = outcome.kind === 'lost' ? 0 : retryDelaySeconds(retry, ctx.policy.retryBaseWait) * 1000;
    return {
      status_sid: 'f',
      queued: 1,
      run_at: new Date(now.getTime() + wait),
      retry_count: retry,
      response,
      finished_at: now,
    };
  }
  if (schedule) {
    // A recurring job gives up this occurrence only; its schedule goes on.
    return { status_sid: 'x', queued: 1, run_at: next(), retry_count: 0, response, finished_at: now };
  }
  return {
    status_sid: 'x',
    queued: 0,
    run_at: null,
    retry_count: job.retryCount,
    response,
    finished_at: now,
    unique_key: null,
  };
}
