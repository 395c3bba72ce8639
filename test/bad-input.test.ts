// Bad rows and bad setups get a clear message; the supervisor keeps serving other jobs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../dist/index.js';
import { client, eachDatabase, JOBS_FIXTURE, type TestDatabase, waitFor } from './helpers/databases';
import { ROOT, ready, startSupervisor } from './helpers/supervisor';

eachDatabase(t, 'bad rows', async (t, db) => {
  const lux = client(t, db);
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const sup = startSupervisor(t, db);
  await ready(sup);

  const now = new Date();
  const raw = (name: string, opts: string) =>
    database
      .knex('lux_jobs')
      .insert({ name, opts, run_at: now, status_sid: 's', queued: 1, created_at: now, updated_at: now });
  await raw('ghost', '{}');
  await raw('value', '{not json');
  const ghost = (await lux.list({ name: 'ghost' }))[0]!;
  const corrupt = (await lux.list({ name: 'value' }))[0]!;
  const huge = await lux.add('huge', {});
  const unserialisable = await lux.add('unserialisable', {});
  const flood = await lux.add('flood', {});

  const ended = async (id: number) => {
    const row = await lux.get(id);
    return row && row.status !== 's' && row.status !== 'r' ? row : undefined;
  };
  const g = await waitFor(() => ended(ghost.id), 15_000, 'ghost');
  t.equal(g.status, 'f');
  t.match(JSON.parse(g.response!), {
    kind: 'unknown-job',
    message: /^unknown job "ghost": this catalogue defines noop, value/,
  });

  const c = await waitFor(() => ended(corrupt.id), 15_000, 'corrupt opts');
  t.equal(c.status, 'f');
  t.match(JSON.parse(c.response!), {
    kind: 'bad-opts',
    message: /^the row's opts are not valid JSON \(.*\): \{not json$/,
  });

  const h = await waitFor(() => ended(huge.id), 15_000, 'huge');
  t.equal(h.status, 'd');
  t.ok(
    Buffer.byteLength(h.response!) <= 64 * 1024,
    `a 1 MB result is bounded (${Buffer.byteLength(h.response!)} bytes stored)`,
  );
  t.match(h.response, /… \[truncated: 1000000 bytes, kept 65536\]$/);

  const u = await waitFor(() => ended(unserialisable.id), 15_000, 'unserialisable');
  t.equal(u.status, 'd');
  t.match(
    u.response,
    /^\[unserialisable result: the result\.callback is a function: only data can be queued\]/,
  );

  const f = await waitFor(() => ended(flood.id), 30_000, 'flood');
  t.equal(f.status, 'd', 'a job printing 50,000 lines still finishes');
  t.equal(f.response, 'flooded');
  await waitFor(
    async () => sup.output.some((l) => /output lines dropped \(over 200\/s\)/.test(l)) || undefined,
    5000,
    'drop notice',
  );
  t.pass('the flood is cut to 200 lines a second in the log, with a count of what was dropped');

  // A NUL character, which PostgreSQL text cannot hold, is replaced rather than refused.
  const nul = await lux.add('nul', {});
  const n = await waitFor(() => ended(nul.id), 15_000, 'nul');
  t.equal(n.status, 'd');
  t.equal(n.response, 'before\uFFFDafter');

  // An error escaping the handler fails the job with that error; the dying worker gets no other job.
  const stray = await lux.add('stray', {});
  const s = await waitFor(() => ended(stray.id), 15_000, 'stray');
  t.equal(s.status, 'f');
  t.match(JSON.parse(s.response!), { kind: 'error', message: 'stray error from a timer' });
  const next = await Promise.all([1, 2, 3].map((i) => lux.add('value', { n: i })));
  for (const { id } of next) {
    const job = await waitFor(() => ended(id), 15_000, 'a job after the stray error');
    t.equal(job.status, 'd', 'no job is sent to the dying worker');
  }

  // And it keeps serving.
  const after = await lux.add('value', { n: 5 });
  t.equal(
    (await waitFor(() => ended(after.id), 15_000, 'a normal job'))?.status,
    'd',
    'the supervisor goes on',
  );
  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0);
});

function supervisorOnce(env: Record<string, string>, args: string[] = []) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'dist', ...(args.length ? ['cli.js'] : ['supervisor.js'])), ...args],
      {
        env: { ...process.env, LUXJOB_WORKERS: '2', ...env },
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const logDir = (db: TestDatabase) => path.join(db.dir, 'log');

eachDatabase(
  t,
  'start without tables',
  async (t, db) => {
    const result = await supervisorOnce({
      LUXJOB_DATABASE_URL: db.url,
      LUXJOB_JOBS: JOBS_FIXTURE,
      LUXJOB_LOG_DIR: logDir(db),
    });
    t.equal(result.code, 1);
    t.match(
      result.out,
      /cannot start: the LuxJob tables are missing in .*: run `luxjob migrate` \(or `npx knex migrate:latest`\) first/,
    );
    t.notMatch(result.out, /^\s+at /m, 'one message, no stack');
  },
  { migrate: false },
);

t.test('start failures', async (t) => {
  const dir = t.testdir({
    'broken.js': 'module.exports = { a: { cron: "99 * * * *", run() {} } };',
    'worker-only.js': `
      if (process.send && process.env.LUXJOB_JOBS && require('node:path').basename(process.argv[1]) === 'worker.js') {
        throw new Error('cannot load in a worker: missing API key');
      }
      module.exports = { a: { run() {} } };`,
  });
  const sqlite = `sqlite:${dir}/db.sqlite3`;
  const base = { LUXJOB_DATABASE_URL: sqlite, LUXJOB_JOBS: JOBS_FIXTURE, LUXJOB_LOG_DIR: `${dir}/log` };
  const migrated = await supervisorOnce(base, ['migrate']);
  t.equal(migrated.code, 0);

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      'unreachable database',
      { LUXJOB_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' },
      /cannot start: cannot reach the database at postgres:\/\/postgres@127\.0\.0\.1:1\/x \(.*ECONNREFUSED.*\): is the server running and the URL right\?/,
    ],
    [
      'invalid environment',
      { LUXJOB_WORKERS: 'abc' },
      /cannot start: LUXJOB_WORKERS must be a whole number >= 1, got "abc"/,
    ],
    [
      'no catalogue',
      { LUXJOB_JOBS: '' },
      /cannot start: no job catalogue: set LUXJOB_JOBS=path\/to\/jobs\.js or pass --jobs/,
    ],
    [
      'invalid catalogue',
      { LUXJOB_JOBS: `${dir}/broken.js` },
      /cannot start: job "a": cron "99 \* \* \* \*" is invalid/,
    ],
    [
      'catalogue that fails in the workers',
      { LUXJOB_JOBS: `${dir}/worker-only.js` },
      /cannot start: job catalogue .*worker-only\.js failed to load: cannot load in a worker: missing API key/,
    ],
  ];
  if (process.env.LUXJOB_TEST_MYSQL_URL) {
    const url = new URL(process.env.LUXJOB_TEST_MYSQL_URL);
    url.password = 'certainly-wrong';
    url.pathname = '/mysql';
    cases.push([
      'wrong password',
      { LUXJOB_DATABASE_URL: url.toString() },
      /cannot start: the database at mysql:\/\/root:\*\*\*@.* refused the credentials \(Access denied/,
    ]);
  }
  for (const [label, env, message] of cases) {
    const started = Date.now();
    const result = await supervisorOnce({ ...base, ...env });
    t.equal(result.code, 1, `${label}: exit code 1`);
    t.match(result.out, message, `${label}: ${result.out.trim().split('\n').pop()}`);
    t.ok(Date.now() - started < 15_000, `${label}: gives up at once instead of looping`);
  }
  const flag = await supervisorOnce(base, ['start', '--bogus']);
  t.equal(flag.code, 1);
  t.match(flag.out, /error: unknown option '--bogus'/);
  t.notOk(fs.existsSync(`${dir}/data`), 'nothing was created elsewhere');
});
