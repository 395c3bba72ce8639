import { MAX_RESPONSE_BYTES } from './constants';
import { InvalidPayloadError } from './errors';

/** Options of `add()`. */
export interface AddOptions {
  /** When the job may run first; now when absent. */
  runAt?: Date | string | number;
  /** Lower runs first; 0 when absent. */
  priority?: number;
  /** While a job with this key is pending (s, f or r), adding another is a no-op. */
  key?: string;
}

export interface AddResult {
  id: number;
  /** false when `key` matched a pending job: `id` is then that job's. */
  created: boolean;
}

/**
 * Why `value` would not survive a JSON round trip, as a path and a reason, or
 * undefined when it is safe. JSON.stringify alone silently drops functions and
 * turns Maps into {}: the handler would receive something else than was added.
 */
export function jsonProblem(value: unknown, at = 'opts', seen = new Set<object>()): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${at} is ${value}, which JSON cannot hold`;
    case 'bigint':
      return `${at} is a BigInt: pass it as a string or number`;
    case 'function':
      return `${at} is a function: only data can be queued`;
    case 'symbol':
      return `${at} is a symbol: only data can be queued`;
    case 'undefined':
      return undefined;
  }
  if (value === null) return undefined;
  const obj = value as object;
  if (seen.has(obj)) return `${at} refers back to itself (a cycle): only tree-shaped data can be queued`;
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? `${at} is an invalid Date` : undefined;
  }
  seen.add(obj);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const problem = jsonProblem(value[i], `${at}[${i}]`, seen);
        if (problem) return problem;
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (obj.constructor as { name?: string } | undefined)?.name ?? 'object';
      return `${at} is a ${kind}, which JSON would not keep: convert it to plain objects, arrays and strings`;
    }
    for (const [key, item] of Object.entries(obj)) {
      const problem = jsonProblem(item, `${at}.${key}`, seen);
      if (problem) return problem;
    }
    return undefined;
  } finally {
    seen.delete(obj);
  }
}

/** opts → the JSON text stored in `lux_jobs.opts`; throws InvalidPayloadError with the offending path. */
export function encodeOpts(opts: unknown): string {
  const problem = jsonProblem(opts);
  if (problem) throw new InvalidPayloadError(`cannot queue this payload: ${problem}`);
  return JSON.stringify(opts ?? {});
}

/** Parses a JSON payload given as text (CLI), with the parser's complaint in the error. */
export function parseOptsText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidPayloadError(
      `opts must be JSON, e.g. '{"to":"a@b.c"}': ${(err as Error).message} in ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
}

export function normaliseRunAt(runAt: AddOptions['runAt']): Date | undefined {
  if (runAt === undefined) return undefined;
  const date = runAt instanceof Date ? runAt : new Date(runAt);
  if (Number.isNaN(date.getTime())) {
    throw new InvalidPayloadError(
      `runAt ${JSON.stringify(runAt)} is not a valid time: use a Date or ISO 8601 text`,
    );
  }
  return date;
}

export function checkAddOptions(options: AddOptions): void {
  const { priority, key } = options;
  if (priority !== undefined && !(Number.isInteger(priority) && Math.abs(priority) <= 1_000_000)) {
    throw new InvalidPayloadError(
      `priority must be a whole number between -1000000 and 1000000 (got ${priority})`,
    );
  }
  if (key !== undefined) {
    if (typeof key !== 'string' || key.length === 0 || key.length > 180) {
      throw new InvalidPayloadError(`key must be a non-empty string of at most 180 characters`);
    }
    if (key.startsWith('recurring:')) {
      throw new InvalidPayloadError(`key may not start with "recurring:": that prefix marks recurring rows`);
    }
  }
}

/** Cuts text to `max` bytes of UTF-8, marking the cut, so a runaway response stays bounded. */
export function bound(input: string, max = MAX_RESPONSE_BYTES): string {
  // PostgreSQL text cannot hold NUL; a result must not be refused for one.
  const text = input.includes('\u0000') ? input.replaceAll('\u0000', '\uFFFD') : input;
  if (Buffer.byteLength(text) <= max) return text;
  const note = `… [truncated: ${Buffer.byteLength(text)} bytes, kept ${max}]`;
  const kept = Buffer.from(text)
    .subarray(0, max - Buffer.byteLength(note))
    .toString('utf8')
    .replace(/\uFFFD$/, '');
  return kept + note;
}

/**
 * A handler's return value → the `response` column. Strings are stored as they
 * are (the seed's responses are strings); anything else as JSON.
 */
export function encodeResult(result: unknown): string {
  if (result === undefined || result === null) return '';
  if (typeof result === 'string') return bound(result);
  const problem = jsonProblem(result, 'the result');
  if (problem) return bound(`[unserialisable result: ${problem}] ${String(result)}`);
  return bound(JSON.stringify(result));
}

/** An error as plain data: what crosses IPC and what a failed row's response holds. */
export interface ErrorData {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export function errorToData(err: unknown): ErrorData {
  if (err instanceof Error) {
    const data: ErrorData = { name: err.name, message: err.message };
    if (err.stack) data.stack = err.stack;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') data.code = String(code);
    return data;
  }
  if (typeof err === 'object' && err !== null && 'message' in err) {
    return { name: 'Error', message: String((err as { message: unknown }).message) };
  }
  return { name: 'NonErrorThrown', message: `a non-Error value was thrown: ${String(err)}` };
}

/** How a run failed; recorded in the response so the operator sees why. */
export type FailureKind = 'error' | 'timeout' | 'crash' | 'unknown-job' | 'bad-opts' | 'lost';

/**
 * The `response` of a failed run: one JSON object with the kind, the error's
 * name and message, and the first stack frame (the whole stack goes to the log).
 */
export function encodeFailure(kind: FailureKind, error: ErrorData): string {
  const at = error.stack
    ?.split('\n')
    .find((line) => line.trim().startsWith('at '))
    ?.trim();
  return bound(
    JSON.stringify({ kind, error: error.name, message: bound(error.message, 8192), ...(at ? { at } : {}) }),
  );
}
