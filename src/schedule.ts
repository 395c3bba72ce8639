import cron from 'node-cron';
import { RETRY_GROWTH } from './constants';

/** A recurring job's schedule, as stored in the row's `schedule` column. */
export type Schedule =
  | { kind: 'every'; seconds: number }
  | { kind: 'cron'; expression: string; timezone: string | undefined };

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90`, `'90s'`, `'15m'`, `'1h'`, `'1d'` → seconds; undefined when the form is wrong. */
export function parseEvery(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$/.exec(value);
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2]!]!;
  return seconds > 0 ? seconds : undefined;
}

/** Why a cron expression is invalid, or undefined when it is valid. */
export function cronProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `must have 5 or 6 fields (got ${fields.length}): "${expression}"`;
  }
  const result = cron.validateDetailed(expression);
  if (result.valid) return undefined;
  return `"${expression}" is invalid: ${result.errors.map((e) => e.message).join('; ')}`;
}

/** Whether `zone` is an IANA time zone this Node knows. */
export function isValidTimezone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function formatSchedule(schedule: Schedule): string {
  if (schedule.kind === 'every') return `every ${schedule.seconds}`;
  return schedule.timezone
    ? `cron ${schedule.expression} tz ${schedule.timezone}`
    : `cron ${schedule.expression}`;
}

export function parseSchedule(text: string | null | undefined): Schedule | undefined {
  if (!text) return undefined;
  const every = /^every (\S+)$/.exec(text);
  if (every) {
    const seconds = Number(every[1]);
    return Number.isFinite(seconds) && seconds > 0 ? { kind: 'every', seconds } : undefined;
  }
  const withZone = /^cron (.+) tz (\S+)$/.exec(text);
  if (withZone) return { kind: 'cron', expression: withZone[1]!, timezone: withZone[2]! };
  const plain = /^cron (.+)$/.exec(text);
  if (plain) return { kind: 'cron', expression: plain[1]!, timezone: undefined };
  return undefined;
}

/** Human form for logs and the CLI: "every 1h", "cron 0 3 * * * (Europe/Berlin)". */
export function describeSchedule(schedule: Schedule | undefined): string {
  if (!schedule) return 'one-off';
  if (schedule.kind === 'cron') {
    return schedule.timezone
      ? `cron ${schedule.expression} (${schedule.timezone})`
      : `cron ${schedule.expression}`;
  }
  const s = schedule.seconds;
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size && s % size === 0) return `every ${s / size}${unit}`;
  }
  return `every ${s}s`;
}

const cronTasks = new Map<string, ReturnType<typeof cron.createTask>>();

/** The first cron time strictly after `after`, in the schedule's zone. */
export function nextCronTime(expression: string, timezone: string | undefined, after: Date): Date {
  const cacheKey = `${expression}\u0000${timezone ?? ''}`;
  let task = cronTasks.get(cacheKey);
  if (!task) {
    // A created task that is never started holds no timer; it only computes times.
    task = cron.createTask(expression, () => undefined, timezone ? { timezone } : {});
    cronTasks.set(cacheKey, task);
  }
  // getNextRuns counts from the current clock; `after` may be slightly ahead of it.
  for (let count = 4; count <= 4096; count *= 4) {
    const next = task.getNextRuns(count).find((d) => d.getTime() > after.getTime());
    if (next) return next;
  }
  throw new Error(`cron "${expression}" has no run after ${after.toISOString()}`);
}

/**
 * When a recurring row runs next. `every`: this run's start + interval (the
 * seed's rule). `cron`: the next cron time after both now and the occurrence
 * that just ran, so a clock a little behind cannot run one occurrence twice.
 * Either way a long downtime gives one catch-up run, never a burst.
 */
export function nextOccurrence(
  schedule: Schedule,
  ctx: { startedAt: Date; scheduledAt: Date | null; now: Date },
): Date {
  if (schedule.kind === 'every') return new Date(ctx.startedAt.getTime() + schedule.seconds * 1000);
  const base = Math.max(ctx.now.getTime(), ctx.scheduledAt?.getTime() ?? 0);
  return nextCronTime(schedule.expression, schedule.timezone, new Date(base));
}

/** The first run of a recurring job that has no row yet: `every` at once, `cron` at its next time. */
export function firstOccurrence(schedule: Schedule, now: Date): Date {
  return schedule.kind === 'every' ? now : nextCronTime(schedule.expression, schedule.timezone, now);
}

/** Seconds to wait before retry number `retry` (1-based): base × 1.6^(retry − 1). */
export function retryDelaySeconds(retry: number, baseWait: number): number {
  return baseWait * RETRY_GROWTH ** (retry - 1);
}
