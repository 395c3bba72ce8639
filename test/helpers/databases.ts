/**
 * Each test file gets databases of its own: a fresh SQLite file, a fresh
 * MariaDB database, a fresh PostgreSQL schema. MariaDB and PostgreSQL are used
 * when LUXJOB_TEST_MYSQL_URL / LUXJOB_TEST_PG_URL are set (.ci/run sets both).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import type { Test } from 'tap';
import { createLuxJob, type LuxJob } from '../../dist/index.js';

export type Kind = 'sqlite' | 'mysql' | 'pg';

export interface TestDatabase {
  kind: Kind;
  url: string;
  /** A scratch directory for this database's logs and files. */
  dir: string;
}

export function kinds(): Kind[] {
  const list: Kind[] = ['sqlite'];
  if (process.env.LUXJOB_TEST_MYSQL_URL) list.push('mysql');
  if (process.env.LUXJOB_TEST_PG_URL) list.push('pg');
  return list;
}

function uniqueName(label: string): string {
  return `lj_${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${crypto.randomBytes(3).toString('hex')}`;
}

function mysqlAdmin(base: URL) {
  return knexFactory({
    client: 'mysql2',
    connection: {
      host: base.hostname,
      port: Number(base.port || 3306),
      user: decodeURIComponent(base.username),
      password: decodeURIComponent(base.password),
    },
  });
}

export async function createDatabase(
  kind: Kind,
  label: string,
): Promise<TestDatabase & { drop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `luxjob-${label}-`));
  const name = uniqueName(label);
  if (kind === 'sqlite') {
    return {
      kind,
      url: `sqlite:${path.join(dir, 'luxjob.sqlite3')}`,
      dir,
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (kind === 'mysql') {
    const base = new URL(process.env.LUXJOB_TEST_MYSQL_URL!);
    const admin = mysqlAdmin(base);
    await admin.raw(`CREATE DATABASE \`${name}\``);
    await admin.destroy();
    const url = new URL(base.toString());
    url.pathname = `/${name}`;
    return {
      kind,
      url: url.toString(),
      dir,
      drop: async () => {
        const again = mysqlAdmin(base);
        await again.raw(`DROP DATABASE IF EXISTS \`${name}\``);
        await again.destroy();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const base = process.env.LUXJOB_TEST_PG_URL!;
  const admin = knexFactory({ client: 'pg', connection: base });
  await admin.raw(`CREATE SCHEMA "${name}"`);
  await admin.destroy();
  const url = new URL(base);
  url.searchParams.set('schema', name);
  return {
    kind,
    url: url.toString(),
    dir,
    drop: async () => {
      const again = knexFactory({ client: 'pg', connection: base });
      await again.raw(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      await again.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `body` once per available database, each in its own subtest with its
 * own migrated database, dropped afterwards.
 */
export function eachDatabase(
  t: Test,
  label: string,
  body: (t: Test, db: TestDatabase) => Promise<void>,
  options: { migrate?: boolean; only?: Kind[] } = {},
): void {
  for (const kind of kinds().filter((k) => !options.only || options.only.includes(k))) {
    t.test(`${label} [${kind}]`, async (t) => {
      const db = await createDatabase(kind, label);
      t.teardown(() => db.drop());
      if (options.migrate !== false) {
        const client = createLuxJob({ jobs: {}, database: db.url });
        await client.migrate();
        await client.close();
      }
      await body(t, db);
    });
  }
}

export const FIXTURES = path.resolve(__dirname, '..', 'fixtures');
export const JOBS_FIXTURE = path.join(FIXTURES, 'jobs.ts');

/** A client on the test database with the fixture catalogue; closed at teardown. */
export function client(t: Test, db: TestDatabase, jobs = JOBS_FIXTURE): LuxJob {
  const c = createLuxJob({ jobs, database: db.url });
  t.teardown(() => c.close());
  return c;
}

/** The fields of each line the fixture jobs appended to `<dir>/runs.log` (one line per run). */
export function readRunLog(dir: string): string[][] {
  const file = path.join(dir, 'runs.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(' '));
}

/** Waits until job `id` is done (status d) and returns its row. */
export function waitForDone(lux: LuxJob, id: number, ms = 15_000, what = `job ${id} to be done`) {
  return waitFor(
    async () => {
      const row = await lux.get(id);
      return row?.status === 'd' ? row : undefined;
    },
    ms,
    what,
  );
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false | null>,
  ms = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
