import t from 'tap';
import { client, eachDatabase, readRunLog, waitFor } from './helpers/databases';
import { ready, startSupervisor } from './helpers/supervisor';

eachDatabase(t, 'exactly once', async (t, db) => {
  const lux = client(t, db);
  const count = 1000;
  const sups = [1, 2, 3].map(() => startSupervisor(t, db, { LUXJOB_WORKERS: '2' }));
  await Promise.all(sups.map(ready));
  // Added once all three are polling, so each has the same chance at the backlog.
  const started = Date.now();
  await lux.addMany(Array.from({ length: count }, () => ({ name: 'record' as const, opts: {} })));
  await waitFor(async () => (await lux.counts()).d === count || undefined, 120_000, 'all jobs done');
  const seconds = (Date.now() - started) / 1000;

  const ids = readRunLog(db.dir).map(([id]) => Number(id));
  t.equal(
    ids.length,
    count,
    `${count} runs recorded (${(count / seconds).toFixed(0)} jobs/s with 3 × 2 workers)`,
  );
  t.equal(new Set(ids).size, count, 'no job ran twice');
  t.same(await lux.counts(), { s: 0, r: 0, f: 0, d: count, x: 0 });

  for (const sup of sups) sup.child.kill('SIGTERM');
  t.same(await Promise.all(sups.map((s) => s.exited)), [0, 0, 0]);
  // Every supervisor took part (read after exit: console lines are written in batches).
  const byLog = sups.map((s) => s.output.filter((line) => /finished in/.test(line)).length);
  t.ok(
    byLog.every((n) => n > 0),
    `each supervisor ran jobs: ${byLog.join(', ')}`,
  );
});
