// The API on each database: migrations, add() and its errors, keys, init(), claim order.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createLuxJob, defineJobs, openDatabase } from '../dist/index.js';
import { claimJobs } from '../dist/queries/claim.js';
import { finishJobs } from '../dist/queries/finish.js';
import { transition } from '../dist/transitions.js';
import { client, eachDatabase } from './helpers/databases';
import { ROOT } from './helpers/supervisor';

const runCli = (args: string[], env: Record<string, string>) =>
  new Promise<{ code: number; out: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), ...args], {
      env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });

eachDatabase(
  t,
  'migrations',
  async (t, db) => {
    const results = await Promise.all(
      [1, 2, 3].map(() => runCli(['migrate'], { LUXJOB_DATABASE_URL: db.url })),
    );
    t.same(
      results.map((r) => r.code),
      [0, 0, 0],
      'three concurrent migrations all succeed',
    );
    t.equal(
      results.filter((r) => /applied: 2026/.test(r.out)).length,
      1,
      'exactly one of them applied the migration',
    );
    const again = await runCli(['migrate'], { LUXJOB_DATABASE_URL: db.url });
    t.match(again.out, /already up to date/, 'running it again is harmless');
    const status = await runCli(['migrate', '--status'], { LUXJOB_DATABASE_URL: db.url });
    t.match(status.out, /applied +20261204000000_create_lux_jobs\.js/);
    const lux = client(t, db);
    t.same(await lux.counts(), { s: 0, r: 0, f: 0, d: 0, x: 0 });
  },
  { migrate: false },
);

eachDatabase(
  t,
  'migration lock race',
  async (t, db) => {
    // knex's bootstrap can leave two lock rows when two first migrations race; that must heal, not lock forever.
    const database = openDatabase(db.url);
    t.teardown(() => database.knex.destroy());
    await database.knex.schema.createTable('lux_knex_migrations_lock', (table) => {
      table.increments('index').primary();
      table.integer('is_locked');
    });
    await database.knex('lux_knex_migrations_lock').insert([{ is_locked: 0 }, { is_locked: 0 }]);
    const healed = await runCli(['migrate'], { LUXJOB_DATABASE_URL: db.url });
    t.equal(healed.code, 0, healed.out);
    t.match(healed.out, /applied: 20261204000000_create_lux_jobs\.js/);
    t.equal(
      (await database.knex('lux_knex_migrations_lock').count({ n: '*' }))[0]?.n,
      1,
      'one lock row left',
    );

    // A lock left by a killed migration is reported with the way out, and --unlock frees it.
    await database.knex('lux_knex_migrations_lock').update({ is_locked: 1 });
    const unlocked = await runCli(['migrate', '--unlock'], { LUXJOB_DATABASE_URL: db.url });
    t.match(unlocked.out, /migration lock freed/);
    t.equal(Number((await database.knex('lux_knex_migrations_lock').first())?.is_locked), 0);
  },
  { migrate: false },
);

eachDatabase(t, 'add', async (t, db) => {
  const lux = client(t, db);
  const first = await lux.add('value', { n: 1 });
  t.same(first.created, true);
  const job = await lux.get(first.id);
  t.equal(job?.status, 's');
  t.equal(job?.opts, '{"n":1}');
  t.equal(job?.retryCount, 0);
  t.ok(Math.abs(job!.runAt!.getTime() - Date.now()) < 5000, 'runs now by default');

  const later = new Date(Date.now() + 3_600_000 + 123);
  const scheduled = await lux.add('value', { n: 2 }, { runAt: later, priority: -5 });
  const row = await lux.get(scheduled.id);
  t.equal(row?.runAt?.getTime(), later.getTime(), 'runAt kept to the millisecond, in UTC');
  t.equal(row?.priority, -5);

  await t.rejects(lux.add('nope' as never, {}), {
    name: 'UnknownJobError',
    message: /unknown job "nope": the catalogue defines noop, value, text/,
  });
  const bad: Array<[unknown, RegExp]> = [
    [{ f: () => 1 }, /opts\.f is a function: only data can be queued/],
    [{ big: 10n }, /opts\.big is a BigInt: pass it as a string or number/],
    [{ list: [1, Number.NaN] }, /opts\.list\[1\] is NaN, which JSON cannot hold/],
    [{ m: new Map() }, /opts\.m is a Map, which JSON would not keep/],
    [
      (() => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      })(),
      /opts\.self refers back to itself \(a cycle\)/,
    ],
  ];
  for (const [opts, message] of bad) {
    await t.rejects(
      lux.add('value', opts as never),
      { name: 'InvalidPayloadError', message },
      String(message),
    );
  }
  await t.rejects(lux.add('value', { n: 1 }, { runAt: 'tomorrow' }), {
    message: /runAt "tomorrow" is not a valid time/,
  });
  await t.rejects(lux.add('value', { n: 1 }, { priority: 1.5 }), {
    message: /priority must be a whole number/,
  });
  await t.rejects(lux.add('value', { n: 1 }, { key: 'recurring:x' }), {
    message: /key may not start with "recurring:"/,
  });
  t.equal((await lux.list({ limit: 100 })).length, 2, 'nothing was written by the refused calls');
});

eachDatabase(t, 'keys', async (t, db) => {
  const lux = client(t, db);
  const one = await lux.add('value', { n: 1 }, { key: 'invoice-42' });
  const two = await lux.add('value', { n: 2 }, { key: 'invoice-42' });
  t.equal(one.created, true);
  t.same(two, { id: one.id, created: false }, 'a pending job with the key makes add a no-op');
  const many = await Promise.all(
    Array.from({ length: 8 }, (_, i) => lux.add('value', { n: i }, { key: 'race' })),
  );
  t.equal(many.filter((r) => r.created).length, 1, 'eight concurrent adds with one key create one job');
  t.equal(new Set(many.map((r) => r.id)).size, 1);

  // Once the keyed job has run, the key is free again.
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const now = new Date();
  const { jobs: claimed } = await claimJobs(database, {
    supervisorId: 'test',
    limit: 10,
    now,
    leaseUntil: new Date(now.getTime() + 60_000),
  });
  t.equal(claimed.length, 2);
  const policy = { maxRetries: 7, retryBaseWait: 60 };
  await finishJobs(
    database,
    'test',
    claimed.map((job) => ({
      id: job.id,
      startedAt: job.startedAt,
      update: transition(job, { type: 'success', response: 'ok' }, { startedAt: now, now, policy }),
    })),
  );
  const three = await lux.add('value', { n: 3 }, { key: 'invoice-42' });
  t.equal(three.created, true, 'the key is released when the job is done');
  t.not(three.id, one.id);
});

eachDatabase(t, 'claim order', async (t, db) => {
  const lux = client(t, db);
  const low = await lux.add('value', { n: 1 }, { priority: 10 });
  const high = await lux.add('value', { n: 2 }, { priority: -1 });
  const mid = await lux.add('value', { n: 3 });
  await lux.add('value', { n: 4 }, { runAt: new Date(Date.now() + 60_000), priority: -100 });
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const now = new Date();
  const lease = new Date(now.getTime() + 60_000);
  const { jobs: a } = await claimJobs(database, { supervisorId: 'a', limit: 2, now, leaseUntil: lease });
  const { jobs: b } = await claimJobs(database, { supervisorId: 'b', limit: 5, now, leaseUntil: lease });
  t.same(
    a.map((j) => j.id),
    [high.id, mid.id],
    'lower priority number first; never more than asked',
  );
  t.same(
    b.map((j) => j.id),
    [low.id],
    'a second claimer gets the rest, the future job stays',
  );
  const row = await lux.get(high.id);
  t.equal(row?.status, 'r');
  t.equal(row?.lockedBy, 'a');
  t.equal(row?.leaseUntil?.getTime(), lease.getTime());

  // A result belongs to one claim: once the row was claimed again, an old run's result is not written.
  const policy = { maxRetries: 7, retryBaseWait: 60 };
  const stale = a[1]!;
  await lux.db
    .knex('lux_jobs')
    .where({ id: stale.id })
    .update({ started_at: new Date(now.getTime() + 5000) });
  const done = (job: typeof stale) => ({
    id: job.id,
    startedAt: job.startedAt,
    update: transition(job, { type: 'success', response: 'ok' }, { startedAt: now, now, policy }),
  });
  const { lost } = await finishJobs(database, 'a', [done(a[0]!), done(stale)]);
  t.same(lost, [stale.id], 'the stale result is reported, not written');
  t.equal((await lux.get(stale.id))?.status, 'r');
  t.equal((await lux.get(a[0]!.id))?.status, 'd');
});

eachDatabase(t, 'init', async (t, db) => {
  const write = (name: string, text: string) => {
    const file = path.join(db.dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const v1 = write(
    'v1.js',
    `module.exports = {
      hourly: { every: '1h', run: () => 1 },
      nightly: { cron: '0 3 * * *', timezone: 'Europe/Berlin', run: () => 1 },
      later_one_off: { every: 60, run: () => 1 },
      once: { run: () => 1 },
    };`,
  );
  const clients = Array.from({ length: 5 }, () => createLuxJob({ jobs: v1, database: db.url }));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const reports = await Promise.all(clients.map((c) => c.init()));
  t.equal(
    reports.flatMap((r) => r.created).length,
    3,
    'five concurrent inits create each recurring row once',
  );
  const lux = clients[0]!;
  const rows = await lux.list({ limit: 50 });
  t.same(rows.map((r) => r.name).sort(), ['hourly', 'later_one_off', 'nightly']);
  const hourly = rows.find((r) => r.name === 'hourly')!;
  t.equal(hourly.schedule, 'every 3600');
  t.equal(hourly.uniqueKey, 'recurring:hourly');
  const nightly = rows.find((r) => r.name === 'nightly')!;
  const berlinHour = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/Berlin',
    hour: '2-digit',
    hourCycle: 'h23',
  }).format(nightly.runAt!);
  t.equal(berlinHour, '03', 'a cron row starts at its next cron time, in its zone');

  const again = await lux.init();
  t.same(again, { created: [], rescheduled: [], removed: [] }, 'init is idempotent');

  const v2 = write(
    'v2.js',
    `module.exports = {
      hourly: { every: '1d', run: () => 1 },
      nightly: { cron: '0 4 * * *', timezone: 'Europe/Berlin', run: () => 1 },
      later_one_off: { run: () => 1 },
      once: { run: () => 1 },
    };`,
  );
  const changed = createLuxJob({ jobs: v2, database: db.url });
  t.teardown(() => changed.close());
  const report = await changed.init();
  t.same(report.rescheduled.sort(), ['hourly', 'nightly'], 'changed schedules are followed');
  t.same(report.removed, ['later_one_off'], 'a job that stopped recurring loses its waiting row');
  const moved = await changed.list({ name: 'nightly' });
  t.equal(moved[0]?.schedule, 'cron 0 4 * * * tz Europe/Berlin');
  t.equal(
    new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', hourCycle: 'h23' }).format(
      moved[0]!.runAt!,
    ),
    '04',
  );
  t.equal((await changed.list({ name: 'hourly' }))[0]?.schedule, 'every 86400');
});

t.test('defineJobs keeps handler types for add()', async (t) => {
  const jobs = defineJobs({ greet: { run: (opts: { who: string }) => `hi ${opts.who}` } });
  const lux = createLuxJob({ jobs, database: 'sqlite::memory:' });
  t.teardown(() => lux.close());
  // @ts-expect-error: 'greet' takes { who: string }.
  const wrong = () => lux.add('greet', { whom: 'x' });
  // @ts-expect-error: unknown names do not type-check.
  const unknown = () => lux.add('nope', {});
  t.type(wrong, 'function');
  t.type(unknown, 'function');
});

eachDatabase(t, 'addMany', async (t, db) => {
  const lux = client(t, db);
  const later = new Date(Date.now() + 3_600_000);
  const count = await lux.addMany([
    { name: 'value', opts: { n: 1 } },
    { name: 'text', opts: { to: 'o\'brien \\ "quoted", {braces}' }, priority: -5 },
    { name: 'noop', runAt: later, priority: 3 },
  ]);
  t.equal(count, 3, 'returns how many it wrote');
  const rows = (await lux.list()).sort((a, b) => a.id - b.id);
  t.same(
    rows.map((r) => [r.name, JSON.parse(r.opts), r.priority, r.status, r.retryCount, r.uniqueKey]),
    [
      ['value', { n: 1 }, 0, 's', 0, null],
      ['text', { to: 'o\'brien \\ "quoted", {braces}' }, -5, 's', 0, null],
      ['noop', {}, 3, 's', 0, null],
    ],
    'names, opts (quotes, backslashes and braces intact), priorities and status',
  );
  t.equal(rows[2]!.runAt!.getTime(), later.getTime(), 'runAt kept to the millisecond');
  t.ok(rows[0]!.runAt!.getTime() <= Date.now(), 'due now without runAt');
  t.equal(await lux.addMany([]), 0, 'an empty list writes nothing');
  const big = await lux.addMany(
    Array.from({ length: 12_000 }, (_, i) => ({ name: 'value' as const, opts: { n: i } })),
  );
  t.equal(big, 12_000);
  t.equal((await lux.counts()).s, 12_003, 'a large batch lands whole');
});
