/**
 * Every message between the supervisor and a worker process. One union each
 * way, discriminated by `type`, so a new message cannot be sent or handled
 * half-way: the compiler checks both ends.
 */
import type { AddOptions, AddResult, ErrorData } from './payload';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Supervisor → worker. */
export type ToWorker =
  /** Run one job; `opts` is the row's JSON text, parsed by the worker. */
  | { type: 'run'; jobId: number; name: string; opts: string; attempt: number }
  /** Graceful shutdown: raise the running handler's AbortSignal. */
  | { type: 'abort' }
  /** Reply to an `enqueue` request. */
  | { type: 'enqueued'; requestId: number; result?: AddResult; error?: ErrorData }
  /** Leave after the current job (recycling or shutdown). */
  | { type: 'exit' };

/** Worker → supervisor. */
export type FromWorker =
  /** The catalogue loaded; the worker takes work from now on. */
  | { type: 'ready'; pid: number; jobs: string[] }
  /** The catalogue failed to load; the worker exits right after. */
  | { type: 'load-failed'; error: ErrorData }
  /** The handler returned; `response` is already encoded and bounded. `rss` lets the pool recycle. */
  | { type: 'done'; jobId: number; response: string; rss: number }
  /** The handler threw, rejected, or the job could not start (bad opts, unknown name). */
  | {
      type: 'failed';
      jobId: number;
      kind: 'error' | 'unknown-job' | 'bad-opts';
      error: ErrorData;
      rss: number;
      /** The worker exits right after (an error escaped the handler): do not give it another job. */
      fatal?: true;
    }
  | { type: 'log'; jobId: number; level: LogLevel; message: string; meta?: Record<string, unknown> }
  /** `ctx.add()` from a handler: the supervisor owns the database connection. */
  | { type: 'enqueue'; requestId: number; name: string; opts: unknown; options: AddOptions };

const WORKER_MESSAGE_TYPES = new Set<FromWorker['type']>([
  'ready',
  'load-failed',
  'done',
  'failed',
  'log',
  'enqueue',
]);
const SUPERVISOR_MESSAGE_TYPES = new Set<ToWorker['type']>(['run', 'abort', 'enqueued', 'exit']);

function hasType(value: unknown): value is { type: string } {
  return (
    typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string'
  );
}

/** Guards the supervisor against anything else a job might `process.send()`. */
export function isFromWorker(value: unknown): value is FromWorker {
  return hasType(value) && WORKER_MESSAGE_TYPES.has(value.type as FromWorker['type']);
}

export function isToWorker(value: unknown): value is ToWorker {
  return hasType(value) && SUPERVISOR_MESSAGE_TYPES.has(value.type as ToWorker['type']);
}
