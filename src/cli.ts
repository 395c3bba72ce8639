#!/usr/bin/env node
/** The `luxjob` command. Every command has --help; errors exit non-zero with one line of reason. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createLuxJob, type LuxJob } from './client';
import { type LuxJobConfig, loadConfig } from './config';
import { STATUS_NAMES, type StatusSid } from './constants';
import { explainDatabaseError, openDatabase } from './db';
import { JobNotFoundError, LuxJobError } from './errors';
import { migrate, migrationStatus, unlockMigrations } from './migrate';
import { parseOptsText } from './payload';
import type { JobRecord } from './queries/row';
import { runSupervisorProcess } from './supervisor';
import { VERSION } from './version';

function wholeNumber(name: string, min: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be a whole number >= ${min}`);
    return n;
  };
}

function positiveNumber(name: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0`);
    return n;
  };
}

interface GlobalOptions {
  database?: string;
  jobs?: string;
}

function baseConfig(opts: GlobalOptions): Partial<LuxJobConfig> {
  return {
    ...(opts.database ? { databaseUrl: opts.database } : {}),
    ...(opts.jobs ? { jobsFile: opts.jobs } : {}),
  };
}

/** A client for commands that need the catalogue (add, init). */
function clientWithJobs(opts: GlobalOptions): LuxJob {
  const config = loadConfig(baseConfig(opts));
  if (!config.jobsFile) {
    throw new LuxJobError(
      'LUXJOB_CONFIG',
      'this command needs the job catalogue: pass --jobs FILE or set LUXJOB_JOBS',
    );
  }
  return createLuxJob({ jobs: config.jobsFile, database: config.databaseUrl });
}

/** A client for read-only commands (list, show): no catalogue needed. */
function clientWithoutJobs(opts: GlobalOptions): LuxJob {
  const config = loadConfig(baseConfig(opts));
  return createLuxJob({ jobs: {}, database: config.databaseUrl });
}

async function withClient<T>(client: LuxJob, fn: (c: LuxJob) => Promise<T>): Promise<T> {
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

function iso(date: Date | null): string {
  return date ? date.toISOString() : '-';
}

function oneLine(text: string | null, max: number): string {
  if (!text) return '';
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function printTable(jobs: JobRecord[]): void {
  const rows = jobs.map((j) => [
    String(j.id),
    j.name,
    j.status,
    iso(j.runAt),
    String(j.retryCount),
    oneLine(j.response, 60),
  ]);
  const header = ['ID', 'NAME', 'S', 'RUN_AT', 'RETRIES', 'RESPONSE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  if (rows.length === 0) console.log('(no jobs)');
}

function printJob(job: JobRecord): void {
  const fields: Array<[string, string]> = [
    ['id', String(job.id)],
    ['name', job.name],
    ['status', `${job.status} (${STATUS_NAMES[job.status] ?? 'unknown'})`],
    ['opts', job.opts],
    ['priority', String(job.priority)],
    ['run_at', iso(job.runAt)],
    ['retry_count', String(job.retryCount)],
    ['schedule', job.schedule ?? 'one-off'],
    ['key', job.uniqueKey ?? '-'],
    ['locked_by', job.lockedBy ?? '-'],
    ['lease_until', iso(job.leaseUntil)],
    ['created_at', iso(job.createdAt)],
    ['started_at', iso(job.startedAt)],
    ['finished_at', iso(job.finishedAt)],
    ['response', job.response ?? ''],
  ];
  for (const [k, v] of fields) console.log(`${k.padEnd(12)} ${v}`);
}

export function buildCli(): Command {
  const program = new Command('luxjob')
    .description(
      'LuxJob: a database-backed job queue with forked workers, hard timeouts, retries and schedules',
    )
    .version(VERSION)
    .addOption(new Option('--database <url>', 'database URL').env('LUXJOB_DATABASE_URL'))
    .addOption(new Option('--jobs <file>', 'job catalogue module (.js or .ts)').env('LUXJOB_JOBS'))
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('migrate')
    .description('create or update the LuxJob tables (safe to run twice, or from several hosts at once)')
    .option('--status', 'only show which migrations are applied and pending')
    .option('--unlock', 'free a migration lock left behind by a killed migration')
    .action(async (opts: { status?: boolean; unlock?: boolean }) => {
      const config = loadConfig(baseConfig(program.opts()));
      const db = openDatabase(config.databaseUrl);
      try {
        if (opts.status) {
          const { completed, pending } = await migrationStatus(db).catch((err) => {
            throw explainDatabaseError(err, db);
          });
          for (const name of completed) console.log(`applied  ${name}`);
          for (const name of pending) console.log(`pending  ${name}`);
          return;
        }
        if (opts.unlock) {
          await unlockMigrations(db).catch((err) => {
            throw explainDatabaseError(err, db);
          });
          console.log('migration lock freed');
          return;
        }
        const { applied } = await migrate(db);
        console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'already up to date');
      } finally {
        await db.knex.destroy();
      }
    });

  program
    .command('start')
    .description('run a supervisor until SIGTERM/SIGINT (same as node dist/supervisor.js)')
    .option('--workers <n>', 'worker processes', wholeNumber('--workers', 1))
    .option(
      '--poll-interval <seconds>',
      'seconds between polls of an empty queue',
      positiveNumber('--poll-interval'),
    )
    .option('--log-dir <dir>', 'directory of lux_job.log')
    .option('--migrate', 'apply pending migrations first (handy with the embedded SQLite default)')
    .action(async (opts: { workers?: number; pollInterval?: number; logDir?: string; migrate?: boolean }) => {
      const code = await runSupervisorProcess(
        {
          ...baseConfig(program.opts()),
          ...(opts.workers ? { workers: opts.workers } : {}),
          ...(opts.pollInterval ? { pollInterval: opts.pollInterval } : {}),
          ...(opts.logDir ? { logDir: opts.logDir } : {}),
        },
        { migrate: opts.migrate === true },
      );
      process.exitCode = code;
    });

  program
    .command('init')
    .description('create the rows of recurring jobs (the supervisor does this at start too)')
    .action(async () => {
      await withClient(clientWithJobs(program.opts()), async (client) => {
        const report = await client.init();
        console.log(
          `created: ${report.created.join(', ') || '-'}; rescheduled: ${report.rescheduled.join(', ') || '-'}; removed: ${report.removed.join(', ') || '-'}`,
        );
      });
    });

  program
    .command('add')
    .description('enqueue a one-off job')
    .argument('<name>', 'job name from the catalogue')
    .argument('[json-opts]', 'the job\'s opts as JSON, e.g. \'{"to":"a@b.c"}\'', '{}')
    .option('--run-at <iso>', 'earliest run time, ISO 8601 (default: now)')
    .option('--priority <n>', 'lower runs first (default 0)', (raw) => {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new InvalidArgumentError('--priority must be a whole number');
      return n;
    })
    .option('--key <key>', 'dedup key: no-op while a job with this key is pending')
    .action(
      async (name: string, jsonOpts: string, opts: { runAt?: string; priority?: number; key?: string }) => {
        const payload = parseOptsText(jsonOpts);
        await withClient(clientWithJobs(program.opts()), async (client) => {
          const result = await client.add(name, payload, {
            ...(opts.runAt ? { runAt: opts.runAt } : {}),
            ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
            ...(opts.key ? { key: opts.key } : {}),
          });
          console.log(
            result.created
              ? `added job ${result.id}`
              : `job ${result.id} with key "${opts.key}" is already pending`,
          );
        });
      },
    );

  program
    .command('list')
    .description('list jobs, newest first')
    .addOption(new Option('--status <s>', 'only this status').choices(Object.keys(STATUS_NAMES)))
    .option('--name <name>', 'only this job name')
    .option('--limit <n>', 'at most this many (default 50)', wholeNumber('--limit', 1), 50)
    .option('--json', 'print JSON')
    .action(async (opts: { status?: StatusSid; name?: string; limit: number; json?: boolean }) => {
      await withClient(clientWithoutJobs(program.opts()), async (client) => {
        const jobs = await client.list({
          limit: opts.limit,
          ...(opts.status ? { status: opts.status } : {}),
          ...(opts.name ? { name: opts.name } : {}),
        });
        if (opts.json) console.log(JSON.stringify(jobs, null, 2));
        else printTable(jobs);
      });
    });

  program
    .command('show')
    .description('show one job')
    .argument('<id>', 'job id', wholeNumber('id', 1))
    .option('--json', 'print JSON')
    .action(async (id: number, opts: { json?: boolean }) => {
      await withClient(clientWithoutJobs(program.opts()), async (client) => {
        const job = await client.get(id);
        if (!job) throw new JobNotFoundError(id);
        if (opts.json) console.log(JSON.stringify(job, null, 2));
        else printJob(job);
      });
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version "errors" are successes; commander already printed usage problems.
      return err.exitCode;
    }
    const message =
      err instanceof LuxJobError ? err.message : err instanceof Error ? err.message : String(err);
    console.error(`luxjob: ${message}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
