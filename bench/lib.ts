/**
 * Helpers of the benchmark: command line, sizes, supervisor processes, /proc
 * readings, database set-up and queries, statistics and the report.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createLuxJob, type Database, type LuxJob, openDatabase } from '../dist/index.js';
import { createDatabase, type Kind } from '../test/helpers/databases';
import { childPids, isWorker } from '../test/helpers/supervisor';

export type { Kind };

const ROOT = path.resolve(__dirname, '..');
const SUPERVISOR_SCRIPT = path.join(ROOT, 'dist', 'supervisor.js');
/** The benchmark's job catalogue (noop, latency, spin). */
export const JOBS_FILE = path.join(__dirname, 'jobs.js');
const KINDS: Kind[] = ['sqlite', 'mysql', 'pg'];

// ---------------------------------------------------------------- command line

export const SCENARIOS = ['throughput', 'latency', 'timeout', 'memory', 'scale'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Options {
  smoke: boolean;
  runs: number;
  only: Scenario[];
  dbs: Kind[];
}

/** A bad flag: main() prints the message and exits 2. */
export class UsageError extends Error {}

function pickList<T extends string>(flag: string, text: string | undefined, allowed: readonly T[]): T[] {
  if (text === undefined) return [...allowed];
  const picked = text.split(',').map((s) => s.trim());
  for (const item of picked) {
    if (!allowed.includes(item as T))
      throw new UsageError(`${flag}: unknown "${item}" (choose from ${allowed.join(', ')})`);
  }
  return allowed.filter((item) => picked.includes(item));
}

/**
 * `--smoke`, `--runs N`, `--only a,b`, `--db sqlite,mysql,pg`. Without `--db`,
 * every database with a URL in the environment; asking for one without a URL is an error.
 */
export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      db: { type: 'string' },
    },
  });
  const smoke = values.smoke ?? false;
  const runs = values.runs === undefined ? (smoke ? 1 : 3) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs must be a whole number >= 1`);
  const available = availableKinds();
  const dbs = values.db === undefined ? available : pickList('--db', values.db, KINDS);
  for (const kind of dbs) {
    if (!available.includes(kind)) {
      const name = kind === 'mysql' ? 'MYSQL' : 'PG';
      throw new UsageError(`--db ${kind}: set LUXJOB_BENCH_${name}_URL (or LUXJOB_TEST_${name}_URL)`);
    }
  }
  return { smoke, runs, only: pickList('--only', values.only, SCENARIOS), dbs };
}

/** createDatabase() reads the LUXJOB_TEST_* URLs: the LUXJOB_BENCH_* ones take precedence. */
export function mapBenchUrls(): void {
  for (const name of ['MYSQL', 'PG']) {
    const url = process.env[`LUXJOB_BENCH_${name}_URL`];
    if (url) process.env[`LUXJOB_TEST_${name}_URL`] = url;
  }
}

function availableKinds(): Kind[] {
  return KINDS.filter(
    (kind) =>
      kind === 'sqlite' || Boolean(process.env[`LUXJOB_TEST_${kind === 'mysql' ? 'MYSQL' : 'PG'}_URL`]),
  );
}

// ---------------------------------------------------------------- sizes

export interface Sizes {
  workers: number;
  throughputJobs: number;
  latencyJobs: number;
  latencyGapMs: number;
  spins: number;
  /** Noops queued behind the spins; must outlast them (checked). */
  spinBacklog: number;
  memoryJobs: number;
  /** The first memory sample is taken when this many jobs are done. */
  memorySampleAt: number;
  scaleRows: number;
  /** Jobs run on the empty and on the big table in the scale scenario. */
  scaleJobs: number;
  claimRows: number;
  claimCalls: number;
  claimLimit: number;
}

export function sizesFor(smoke: boolean): Sizes {
  const common = { workers: 8, latencyGapMs: 20, claimCalls: 100, claimLimit: 8, claimRows: 800 };
  return smoke
    ? {
        ...common,
        throughputJobs: 300,
        latencyJobs: 30,
        spins: 3,
        spinBacklog: 150_000,
        memoryJobs: 2_000,
        memorySampleAt: 200,
        scaleRows: 20_000,
        scaleJobs: 300,
      }
    : {
        ...common,
        throughputJobs: 5_000,
        latencyJobs: 200,
        spins: 20,
        spinBacklog: 400_000,
        memoryJobs: 50_000,
        memorySampleAt: 5_000,
        scaleRows: 1_000_000,
        scaleJobs: 20_000,
      };
}

// ---------------------------------------------------------------- small utilities

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Calls `check` every `intervalMs` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Progress goes to stderr; stdout carries only the JSON lines and the table. */
export function progress(message: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
}

// ---------------------------------------------------------------- statistics

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

const ascending = (values: number[]) => [...values].sort((a, b) => a - b);

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  const sorted = ascending(values);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function median(values: number[]): number {
  const sorted = ascending(values);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(values: number[]): Summary {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length };
}

/** (value − base) / base, in percent. */
export const percentDiff = (value: number, base: number) => ((value - base) / base) * 100;

// ---------------------------------------------------------------- supervisor processes

export interface SupervisorSettings {
  url: string;
  /** The scenario's scratch directory; the log goes to <dir>/log. */
  dir: string;
  workers: number;
  /** LUXJOB_POLL_INTERVAL in seconds. */
  poll: number;
}

export interface SupervisorProcess {
  pid: number;
  /** Date.now() just before the spawn. */
  spawnedAt: number;
  /** The time stamped on its "supervisor … running" line (epoch ms). */
  running: Promise<number>;
  /** SIGTERM, then waits for a clean exit (idempotent). */
  stop(): Promise<void>;
  /** SIGKILL if still alive (clean-up after a failure). */
  kill(): void;
}

const RUNNING_LINE = /^(\S+)\s+\S+\s+supervisor \S+ running/;
const live = new Set<ChildProcess>();

/** Kills every supervisor still running (on Ctrl-C or a crash of the bench). */
function cpuTimes(): { idle: number; total: number } {
  const fields = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  // idle + iowait
  return { idle: fields[3]! + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
}

/**
 * Waits until the machine is quiet (at least 90 % idle over half a second),
 * at most `maxMs`: a database server still flushing or purging what the last
 * scenario left (MariaDB after a million-row table, say) would otherwise be
 * measured as part of the next one. Returns the ms waited; no-op off Linux.
 */
export async function waitForQuiet(maxMs = 60_000): Promise<number> {
  if (!fs.existsSync('/proc/stat')) return 0;
  const started = Date.now();
  for (;;) {
    const before = cpuTimes();
    await sleep(500);
    const after = cpuTimes();
    const idle = (after.idle - before.idle) / Math.max(1, after.total - before.total);
    if (idle >= 0.9 || Date.now() - started >= maxMs) return Date.now() - started;
  }
}

/** Kills `child` with the supervisors when the bench stops early (Ctrl-C, a failure). */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.on('exit', () => live.delete(child));
}

export function killAllSupervisors(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Starts `node dist/supervisor.js` on the benchmark catalogue. */
export function startSupervisor(settings: SupervisorSettings): SupervisorProcess {
  const spawnedAt = Date.now();
  const nodeArgs = (process.env.LUXJOB_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, SUPERVISOR_SCRIPT], {
    cwd: ROOT,
    env: {
      ...process.env,
      LUXJOB_DATABASE_URL: settings.url,
      LUXJOB_JOBS: JOBS_FILE,
      LUXJOB_WORKERS: String(settings.workers),
      LUXJOB_POLL_INTERVAL: String(settings.poll),
      LUXJOB_LOG_DIR: path.join(settings.dir, 'log'),
      LUXJOB_LOG_FORMAT: 'text',
      LUXJOB_LOG_LEVEL: process.env.LUXJOB_BENCH_LOG_LEVEL ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const tail: string[] = [];
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  const running = new Promise<number>((resolve, reject) => {
    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      const match = RUNNING_LINE.exec(line);
      if (match) resolve(Date.parse(match[1]!));
    };
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream! }).on('line', onLine);
    void exited.then((how) =>
      reject(new Error(`supervisor exited (${how}) before it was running:\n${tail.join('\n')}`)),
    );
  });
  const runningInTime = withTimeout(running, 60_000, 'the supervisor to be running');
  // Awaited by every scenario; this only keeps an early failure from being an unhandled rejection.
  runningInTime.catch(() => undefined);
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid!,
    spawnedAt,
    running: runningInTime,
    stop() {
      stopping ??= stopProcess(child, exited, tail);
      return stopping;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

async function stopProcess(
  child: ChildProcess,
  exited: Promise<number | string>,
  tail: string[],
): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const how = await withTimeout(exited, 60_000, 'the supervisor to stop').catch((err: Error) => {
    child.kill('SIGKILL');
    throw err;
  });
  if (how !== 0) throw new Error(`supervisor exited with ${how}; its last output:\n${tail.join('\n')}`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `body` with a supervisor, stops it gracefully afterwards, and kills it if anything failed. */
export async function withSupervisor<T>(
  settings: SupervisorSettings,
  body: (supervisor: SupervisorProcess) => Promise<T>,
): Promise<T> {
  const supervisor = startSupervisor(settings);
  try {
    const result = await body(supervisor);
    await supervisor.stop();
    return result;
  } finally {
    supervisor.kill();
  }
}

// ---------------------------------------------------------------- /proc

/** The supervisor's LuxJob workers (not, say, a helper process). */
export function workerPids(supervisorPid: number): number[] {
  return childPids(supervisorPid).filter(isWorker);
}

/** VmRSS of a process in MB (MiB), or undefined when it is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return kb ? Number(kb[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- databases

export interface BenchDatabase {
  kind: Kind;
  url: string;
  dir: string;
  /** A client on the benchmark catalogue. */
  client: LuxJob;
  /** The client's database handle, for direct queries. */
  db: Database;
}

/** A fresh, migrated database for `body`, dropped afterwards whatever happens. */
export async function withDatabase<T>(
  kind: Kind,
  label: string,
  body: (bench: BenchDatabase) => Promise<T>,
): Promise<T> {
  const created = await createDatabase(kind, `bench_${label}`);
  try {
    const migrator = createLuxJob({ jobs: {}, database: created.url });
    await migrator.migrate();
    await migrator.close();
    const client = createLuxJob({ jobs: JOBS_FILE, database: created.url });
    try {
      return await body({ kind, url: created.url, dir: created.dir, client, db: client.db });
    } finally {
      await client.close();
    }
  } finally {
    await created.drop();
  }
}

/** The rows of a knex.raw() result, whatever the driver. */
export function rawRows(db: Database, result: unknown): Record<string, unknown>[] {
  if (db.dialect === 'pg') return (result as { rows: Record<string, unknown>[] }).rows;
  if (db.dialect === 'mysql') return (result as [Record<string, unknown>[]])[0];
  return result as Record<string, unknown>[];
}

/** A time column as epoch ms (SQLite stores epoch ms; the others return Dates). */
export function toMs(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number' || typeof value === 'bigint') return Number(value);
  const text = String(value);
  return /^\d+$/.test(text) ? Number(text) : Date.parse(text);
}

export async function maxId(db: Database): Promise<number> {
  const row = await db.knex('lux_jobs').max({ m: 'id' }).first();
  return Number(row?.m ?? 0);
}

export type StatusCounts = Record<'s' | 'r' | 'f' | 'd' | 'x', number>;

/**
 * Rows per status among the ids above `sinceId`: the same as `counts()` on a
 * fresh table, but on a table of a million finished rows it reads only the
 * scenario's own rows (a primary-key range), so polling it costs the same.
 */
export async function countsSince(db: Database, sinceId: number): Promise<StatusCounts> {
  const counts: StatusCounts = { s: 0, r: 0, f: 0, d: 0, x: 0 };
  const rows = await db
    .knex('lux_jobs')
    .where('id', '>', sinceId)
    .select('status_sid')
    .count({ n: '*' })
    // SQLite would rather group along lux_jobs_status_finished, reading every row of the table
    // (30 ms a poll at a million rows, most of a core at one poll per 20 ms); `+` rules that out.
    .groupByRaw(db.dialect === 'sqlite' ? '+status_sid' : 'status_sid');
  for (const row of rows as Array<{ status_sid: keyof StatusCounts; n: number | string }>)
    counts[row.status_sid] = Number(row.n);
  return counts;
}

/** Polls every 20 ms until `target` jobs above `sinceId` are done; any failed job is an error. */
export async function waitForDone(db: Database, sinceId: number, target: number): Promise<StatusCounts> {
  const timeoutMs = 120_000 + target * 10;
  return waitFor(
    `${target} jobs to be done`,
    async () => {
      const counts = await countsSince(db, sinceId);
      if (counts.f + counts.x > 0) throw new Error(`jobs failed: ${JSON.stringify(counts)}`);
      return counts.d >= target ? counts : undefined;
    },
    timeoutMs,
  );
}

/** max(finished_at) of the jobs above `sinceId`, in epoch ms. */
export async function lastFinishedAt(db: Database, sinceId: number): Promise<number> {
  const row = await db.knex('lux_jobs').where('id', '>', sinceId).max({ m: 'finished_at' }).first();
  const ms = toMs(row?.m);
  if (ms === undefined) throw new Error('no finished job to time');
  return ms;
}

/** Enqueues `n` noop jobs with addMany, `chunk` at a time. */
export async function addNoops(client: LuxJob, n: number, chunk = 5_000): Promise<void> {
  for (let done = 0; done < n; done += chunk) {
    const size = Math.min(chunk, n - done);
    await client.addMany(Array.from({ length: size }, () => ({ name: 'noop' })));
  }
}

const SEED_COLUMNS =
  'name, opts, priority, run_at, status_sid, queued, retry_count, response, created_at, updated_at, finished_at';
const SEED_VALUES = "'noop', '{}', 0, NULL, 'd', 0, 0, '', ?, ?, ?";

/**
 * Inserts `rows` finished noop rows in one statement. PostgreSQL counts with
 * generate_series; SQLite and MariaDB with a recursive CTE of √rows numbers
 * crossed with itself (MariaDB stops recursion after max_recursive_iterations,
 * 1,000 by default).
 */
export async function seedFinishedRows(db: Database, rows: number, at: Date): Promise<void> {
  const time = db.dialect === 'sqlite' ? at.getTime() : at;
  const times = [time, time, time];
  if (db.dialect === 'pg') {
    await db.knex.raw(
      `INSERT INTO lux_jobs (${SEED_COLUMNS}) SELECT ${SEED_VALUES} FROM generate_series(1, CAST(? AS integer))`,
      [...times, rows],
    );
    return;
  }
  const side = Math.ceil(Math.sqrt(rows));
  await db.knex.raw(
    `INSERT INTO lux_jobs (${SEED_COLUMNS})
     WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
     SELECT ${SEED_VALUES} FROM seq a CROSS JOIN seq b LIMIT ?`,
    [side, ...times, rows],
  );
}

/**
 * Brings a table just filled in one statement to where a table that grew over
 * days would be: fresh planner statistics (as autovacuum and InnoDB's
 * automatic recalculation would soon make), the insert's pages written out
 * (PostgreSQL CHECKPOINT, InnoDB's dirty pages flushed, SQLite's WAL
 * checkpointed), so the measurement after it is not paying for the seed.
 */
export async function settle(db: Database): Promise<void> {
  if (db.dialect === 'pg') {
    await db.knex.raw('ANALYZE lux_jobs');
    await db.knex.raw('CHECKPOINT');
  } else if (db.dialect === 'mysql') {
    await db.knex.raw('ANALYZE TABLE lux_jobs');
    // InnoDB flushes in the background; wait until it has little left or stops making progress.
    const status = async (name: string) => {
      const [row] = rawRows(db, await db.knex.raw(`SHOW GLOBAL STATUS LIKE '${name}'`));
      return Number(row?.Value ?? 0);
    };
    const total = await status('Innodb_buffer_pool_pages_total');
    const deadline = Date.now() + 30_000;
    let before = Number.POSITIVE_INFINITY;
    for (;;) {
      const dirty = await status('Innodb_buffer_pool_pages_dirty');
      if (dirty <= total / 100 || dirty >= before || Date.now() > deadline) break;
      before = dirty;
      await sleep(2000);
    }
  } else {
    await db.knex.raw('PRAGMA wal_checkpoint(TRUNCATE)');
  }
}

/** `select sqlite_version()` or `select version()` on a throwaway database. */
export async function serverVersion(kind: Kind): Promise<string> {
  const created = await createDatabase(kind, 'bench_version');
  const db = openDatabase(created.url);
  try {
    const sql = kind === 'sqlite' ? 'select sqlite_version() as v' : 'select version() as v';
    const [row] = rawRows(db, await db.knex.raw(sql));
    const version = String(row?.v);
    return kind === 'sqlite' ? `SQLite ${version}` : version;
  } finally {
    await db.knex.destroy();
    await created.drop();
  }
}

// ---------------------------------------------------------------- report

export interface Figure {
  id: string;
  unit: string;
  /** What the table's first column says. */
  label: string;
}

/** A number for people: fewer decimals as it grows. */
export function formatNumber(value: number): string {
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;

/** Collects every figure, prints its JSON line at once, and renders the Markdown table at the end. */
export class Report {
  private readonly rows = new Map<string, { figure: Figure; cells: Map<Kind, Summary> }>();

  /** Fixes the table's row order up front (rows are otherwise added as first measured). */
  declare(figures: Figure[]): void {
    for (const figure of figures) {
      if (!this.rows.has(figure.id)) this.rows.set(figure.id, { figure, cells: new Map<Kind, Summary>() });
    }
  }

  record(kind: Kind, figure: Figure, values: number[]): void {
    const summary = summarize(values);
    this.declare([figure]);
    this.rows.get(figure.id)!.cells.set(kind, summary);
    const line = {
      bench: 'luxjob',
      db: kind,
      figure: figure.id,
      unit: figure.unit,
      median: round3(summary.median),
      min: round3(summary.min),
      max: round3(summary.max),
      runs: summary.runs,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }

  markdown(): string {
    const cell = (s: Summary | undefined) =>
      s
        ? s.runs > 1
          ? `${formatNumber(s.median)} (${formatNumber(s.min)}–${formatNumber(s.max)})`
          : formatNumber(s.median)
        : '—';
    const lines = ['| figure | sqlite | mysql | pg |', '| --- | ---: | ---: | ---: |'];
    for (const { figure, cells } of this.rows.values()) {
      if (cells.size === 0) continue;
      const columns = KINDS.map((kind) => cell(cells.get(kind)));
      lines.push(`| ${figure.label} (${figure.unit}) | ${columns.join(' | ')} |`);
    }
    return lines.join('\n');
  }
}

/** CPU, cores, memory, Node, and each database server's version. */
export function describeMachine(versions: Map<Kind, string>): string {
  const cpus = os.cpus();
  const lines = [
    `- CPU: ${cpus[0]?.model ?? 'unknown'}, ${cpus.length} cores`,
    `- memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- Node ${process.version}, ${os.type()} ${os.release()}`,
  ];
  for (const [kind, version] of versions) lines.push(`- ${kind}: ${version}`);
  return lines.join('\n');
}
