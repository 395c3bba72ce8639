import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../dist/index.js';
import { client, eachDatabase, FIXTURES, readRunLog, waitFor, waitForDone } from './helpers/databases';
import { ready, startSupervisor } from './helpers/supervisor';

const RECURRING = path.join(FIXTURES, 'recurring.ts');
const runs = (dir: string, name: string) =>
  readRunLog(dir)
    .filter(([n]) => n === name)
    .map(([, id, at]) => ({ id: Number(id), at: Number(at) }));

eachDatabase(t, 'recurring', async (t, db) => {
  const lux = client(t, db, RECURRING);
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const started = Date.now();
  const sups = [1, 2, 3].map(() => startSupervisor(t, db, {}, RECURRING));
  await Promise.all(sups.map(ready));

  const rows = await lux.list();
  t.same(
    rows.map((r) => r.name).sort(),
    ['every_second', 'flaky_hourly', 'hourly', 'tokyo_nine'],
    'one row per recurring job, for three supervisors',
  );

  // every: next run = this run's start + interval.
  const hourly = await waitFor(
    async () => {
      const row = (await lux.list({ name: 'hourly' }))[0];
      return row?.status === 'd' ? row : undefined;
    },
    15_000,
    'hourly to run',
  );
  t.equal(hourly.runAt!.getTime() - hourly.startedAt!.getTime(), 3_600_000, 'every 1h: start + 1 h');
  t.equal(hourly.response, 'hourly done');
  t.equal(hourly.retryCount, 0);

  // cron in Tokyo: waiting for its next 09:00 JST.
  const tokyo = (await lux.list({ name: 'tokyo_nine' }))[0]!;
  t.equal(tokyo.status, 's');
  const jst = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Asia/Tokyo',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  });
  t.equal(jst.format(tokyo.runAt!), '09:00', 'the cron row waits for 09:00 Tokyo time');
  t.ok(tokyo.runAt!.getTime() > started && tokyo.runAt!.getTime() <= started + 86_400_000 + 5000);

  // Simulated downtime: its occurrence was due 5 days ago; one catch-up run, then the next 09:00 JST.
  await database
    .knex('lux_jobs')
    .where({ id: tokyo.id })
    .update({ run_at: new Date(Date.now() - 5 * 86_400_000) });
  const caughtUp = await waitForDone(lux, tokyo.id, 15_000, 'tokyo catch-up');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(runs(db.dir, 'tokyo_nine').length, 1, 'five missed days give one catch-up run, not five');
  t.equal(jst.format(caughtUp.runAt!), '09:00');
  t.ok(caughtUp.runAt!.getTime() > Date.now(), 'and the next run is in the future');

  // every after downtime: three hours overdue → one run, then start + 1 h.
  await database
    .knex('lux_jobs')
    .where({ id: hourly.id })
    .update({ run_at: new Date(Date.now() - 3 * 3_600_000) });
  const hourlyAgain = await waitFor(
    async () => {
      const row = await lux.get(hourly.id);
      return row && row.startedAt!.getTime() > hourly.startedAt!.getTime() && row.status === 'd'
        ? row
        : undefined;
    },
    15_000,
    'hourly catch-up',
  );
  await new Promise((r) => setTimeout(r, 500));
  t.equal(runs(db.dir, 'hourly').length, 2, 'one catch-up run');
  t.equal(hourlyAgain.runAt!.getTime() - hourlyAgain.startedAt!.getTime(), 3_600_000);

  // A recurring job that fails permanently gives up that occurrence and keeps its schedule.
  const flaky = await waitFor(
    async () => {
      const row = (await lux.list({ name: 'flaky_hourly' }))[0];
      return row?.status === 'x' ? row : undefined;
    },
    15_000,
    'flaky to fail permanently',
  );
  t.equal(flaky.retryCount, 0);
  t.ok(
    flaky.runAt && flaky.runAt.getTime() > Date.now() + 3_500_000,
    'resumes at its next regular occurrence',
  );

  // every_second ran once per occurrence across three supervisors: never two runs at once.
  await new Promise((r) => setTimeout(r, 4000));
  const ticks = runs(db.dir, 'every_second');
  t.ok(
    ticks.length >= 4,
    `ran ${ticks.length} times in about ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  // The interval runs from one claim to the next; these times are taken in the handler, a claim
  // round trip and an IPC hop later, which under load varies by tens of ms. Two runs at once
  // would show a gap near 0.
  const gaps = ticks.slice(1).map((tick, i) => tick.at - ticks[i]!.at);
  t.ok(
    gaps.every((gap) => gap >= 850),
    `consecutive runs are an interval apart (min gap ${Math.min(...gaps)} ms)`,
  );
  t.ok(new Set(ticks.map((x) => x.id)).size === 1, 'all runs are the same recurring row');

  for (const sup of sups) sup.child.kill('SIGTERM');
  t.same(await Promise.all(sups.map((s) => s.exited)), [0, 0, 0]);
});
