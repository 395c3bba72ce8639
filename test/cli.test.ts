// The luxjob command: add/list/show round trip, --help everywhere, one-line errors with a non-zero exit.
import { spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { eachDatabase, JOBS_FIXTURE } from './helpers/databases';
import { ROOT } from './helpers/supervisor';

function luxjob(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), ...args], {
      env: { ...process.env, LUXJOB_JOBS: '', LUXJOB_DATABASE_URL: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

eachDatabase(t, 'cli round trip', async (t, db) => {
  const env = { LUXJOB_DATABASE_URL: db.url, LUXJOB_JOBS: JOBS_FIXTURE };
  const added = await luxjob(
    ['add', 'text', '{"to":"a@b.c"}', '--priority', '3', '--run-at', '2030-01-02T03:04:05.678Z'],
    env,
  );
  t.equal(added.code, 0, added.stderr);
  const id = Number(/added job (\d+)/.exec(added.stdout)?.[1]);
  t.ok(id > 0, 'prints the new id');

  const keyed = await luxjob(['add', 'noop', '--key', 'k'], env);
  const dup = await luxjob(['add', 'noop', '--key', 'k'], env);
  t.match(dup.stdout, /job \d+ with key "k" is already pending/);
  t.equal(/added job (\d+)/.exec(keyed.stdout)?.[1], /job (\d+) with key/.exec(dup.stdout)?.[1]);

  const list = await luxjob(['list'], env);
  t.equal(list.code, 0);
  t.match(list.stdout, /ID\s+NAME\s+S\s+RUN_AT\s+RETRIES\s+RESPONSE/);
  t.match(list.stdout, new RegExp(`${id}\\s+text\\s+s\\s+2030-01-02T03:04:05.678Z\\s+0`));

  const json = JSON.parse(
    (await luxjob(['list', '--json', '--name', 'text', '--status', 's', '--limit', '5'], env)).stdout,
  );
  t.equal(json.length, 1);
  t.equal(json[0].opts, '{"to":"a@b.c"}');
  t.equal(json[0].priority, 3);

  const show = await luxjob(['show', String(id)], env);
  t.match(show.stdout, /status +s \(scheduled\)/);
  t.match(show.stdout, /opts +\{"to":"a@b.c"\}/);
  const showJson = JSON.parse((await luxjob(['show', String(id), '--json'], env)).stdout);
  t.equal(showJson.runAt, '2030-01-02T03:04:05.678Z');

  const missing = await luxjob(['show', '99999'], env);
  t.equal(missing.code, 1);
  t.equal(missing.stderr.trim(), 'luxjob: no job with id 99999');
});

t.test('every command has --help', async (t) => {
  for (const command of [[], ['migrate'], ['start'], ['init'], ['add'], ['list'], ['show']]) {
    const result = await luxjob([...command, '--help']);
    t.equal(result.code, 0, `${command.join(' ') || 'luxjob'} --help exits 0`);
    t.match(result.stdout, /Usage: luxjob/);
  }
});

t.test('errors: one line, non-zero exit', async (t) => {
  const dir = t.testdir({});
  const env = { LUXJOB_DATABASE_URL: `sqlite:${dir}/db.sqlite3`, LUXJOB_JOBS: JOBS_FIXTURE };
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['list', '--bogus'], env, /unknown option '--bogus'/],
    [['frobnicate'], env, /unknown command 'frobnicate'/],
    [
      ['list'],
      { ...env, LUXJOB_WORKERS: 'abc' },
      /^luxjob: LUXJOB_WORKERS must be a whole number >= 1, got "abc"$/m,
    ],
    [
      ['list'],
      { ...env, LUXJOB_POLL_INTERVAL: '-1' },
      /LUXJOB_POLL_INTERVAL must be a number >= 0.01, got "-1"/,
    ],
    [
      ['list'],
      { ...env, LUXJOB_LOG_FORMAT: 'xml' },
      /LUXJOB_LOG_FORMAT must be one of text, json, got "xml"/,
    ],
    [['list'], env, /^luxjob: the LuxJob tables are missing in sqlite:.*: run `luxjob migrate`/m],
    [['add', 'text', '{not json'], env, /^luxjob: opts must be JSON, e\.g\. .*Expected property name/m],
    [['add', 'nope'], env, /^luxjob: unknown job "nope": the catalogue defines noop, value/m],
    [
      ['add', 'noop'],
      { ...env, LUXJOB_JOBS: '' },
      /^luxjob: this command needs the job catalogue: pass --jobs FILE or set LUXJOB_JOBS$/m,
    ],
    [
      ['add', 'noop', '--jobs', '/nonexistent/jobs.js'],
      env,
      /^luxjob: job catalogue not found: \/nonexistent\/jobs\.js/m,
    ],
    [['list', '--limit', 'x'], env, /--limit must be a whole number >= 1/],
    [['show', 'abc'], env, /id must be a whole number >= 1/],
    [
      ['list'],
      { ...env, LUXJOB_DATABASE_URL: 'redis://localhost' },
      /database URL scheme "redis:" is not supported/,
    ],
    [
      ['list'],
      { ...env, LUXJOB_DATABASE_URL: 'mysql://root:wrong@127.0.0.1:3306/x' },
      /refused the credentials|cannot reach the database/,
    ],
    [
      ['list'],
      { ...env, LUXJOB_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' },
      /^luxjob: cannot reach the database at postgres:\/\/postgres@127\.0\.0\.1:1\/x .*is the server running/m,
    ],
  ];
  for (const [args, caseEnv, message] of cases) {
    const result = await luxjob(args, caseEnv);
    t.not(result.code, 0, `${args.join(' ')} exits non-zero`);
    t.match(result.stderr, message, `${args.join(' ')}: ${result.stderr.trim().split('\n')[0]}`);
    t.notMatch(result.stderr, /^\s+at /m, 'no stack trace');
  }
});
