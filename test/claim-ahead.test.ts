// Claiming ahead: during a backlog a supervisor holds a few claimed jobs for
// workers about to free up; what it holds too long, or at shutdown, goes back
// to the table unstarted and uncounted, and nothing runs twice or is lost.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { procStat } from '../dist/cpu-hogs.js';
import { READY_TTL_MS, ReadyQueue } from '../dist/supervisor/ready.js';
import { client, eachDatabase, readRunLog, waitFor } from './helpers/databases';
import { ready, startSupervisor } from './helpers/supervisor';

const job = (id: number, claimedAt: number) => ({
  id,
  name: 'noop',
  opts: '{}',
  retryCount: 0,
  runAt: new Date(claimedAt),
  schedule: null,
  startedAt: new Date(claimedAt),
});

t.test('the ready queue holds what its workers finish in about 20 ms', async (t) => {
  const queue = new ReadyQueue(64);
  const start = 1_000_000;
  t.equal(queue.target(start), 0, 'nothing while no job has finished');
  // 500 jobs in 100 ms: 5 a millisecond, so 100 within 20 ms, capped at 64.
  for (let i = 0; i < 500; i++) queue.finished(start + i / 5);
  t.equal(queue.target(start + 150), 64, 'a fast backlog: up to the cap');
  const slow = new ReadyQueue(64);
  for (let i = 0; i < 20; i++) slow.finished(start + i * 5);
  t.equal(slow.target(start + 150), 4, '20 jobs in 100 ms: 4 held');
  t.equal(slow.target(start + 450), 0, 'nothing finished lately: holds none');
  t.equal(new ReadyQueue(0).target(start), 0, 'prefetch 0 turns it off');

  queue.push([job(1, start)], start);
  queue.push([job(2, start)], start + 600);
  t.same(
    queue.expire(start + READY_TTL_MS + 100).map((j) => j.id),
    [1],
    'a job held past the TTL is handed back (counted from when it was held, not claimed)',
  );
  t.equal(queue.length, 1);
  t.equal(queue.shift()?.id, 2, 'the rest start in claim order');
});

eachDatabase(
  t,
  'a backlog of long jobs does not keep the supervisor busy',
  async (t, db) => {
    const lux = client(t, db);
    const sup = startSupervisor(t, db, { LUXJOB_WORKERS: '2' });
    await ready(sup);
    await lux.addMany(Array.from({ length: 6 }, () => ({ name: 'sleep' as const, opts: { ms: 2000 } })));
    await waitFor(async () => ((await lux.counts()).r === 2 ? true : undefined), 10_000, 'both workers busy');
    const before = procStat(sup.pid)!.cpuMs;
    await new Promise((r) => setTimeout(r, 1000));
    const used = procStat(sup.pid)!.cpuMs - before;
    // Waiting for a worker must be a sleep, not a loop: a spinning supervisor shows ~1,000 ms here.
    t.ok(used < 300, `the supervisor used ${used} ms of CPU in 1 s while both workers slept`);
    sup.child.kill('SIGTERM');
    t.equal(await sup.exited, 0);
  },
  { only: ['sqlite'] },
);

eachDatabase(t, 'claimed ahead, then held too long', async (t, db) => {
  const lux = client(t, db);
  const sup = startSupervisor(t, db, { LUXJOB_WORKERS: '2', LUXJOB_LOG_LEVEL: 'debug' });
  await ready(sup);
  // A fast backlog makes the supervisor claim ahead; the two long jobs then hold both
  // workers for 2.5 s, far past the 1 s a claimed-ahead job may wait.
  const fast = (n: number) => Array.from({ length: n }, () => ({ name: 'record' as const, opts: {} }));
  const total = await lux.addMany([
    ...fast(600),
    ...[1, 2].map(() => ({ name: 'record' as const, opts: { ms: 2500 } })),
    ...fast(100),
  ]);
  await waitFor(async () => (await lux.counts()).d === total || undefined, 60_000, 'all done');
  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0);

  const runs = readRunLog(db.dir).map(([id]) => Number(id));
  t.equal(runs.length, total, 'every job ran');
  t.equal(new Set(runs).size, total, 'none ran twice');
  const rows = await lux.list({ limit: 1000 });
  t.ok(
    rows.every((row) => row.retryCount === 0),
    'a job handed back unstarted does not count a retry',
  );
  const log = fs.readFileSync(path.join(db.dir, 'log', 'lux_job.log'), 'utf8');
  const handedBack = log.match(/claimed ahead but not started; put back/g)?.length ?? 0;
  t.ok(handedBack > 0, `${handedBack} jobs held past the TTL went back to the table`);
});

eachDatabase(t, 'claimed ahead, then shut down', async (t, db) => {
  const lux = client(t, db);
  const sup = startSupervisor(t, db, { LUXJOB_WORKERS: '2' });
  await ready(sup);
  const total = 3000;
  await lux.addMany(Array.from({ length: total }, () => ({ name: 'record' as const, opts: {} })));
  await waitFor(async () => ((await lux.counts()).d >= 300 ? true : undefined), 60_000, '300 done');
  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0);
  const counts = await lux.counts();
  t.equal(counts.r, 0, 'no row is left running');
  t.equal(counts.d + counts.s, total, 'every job is either done or waiting again');
  t.ok(
    (await lux.list({ limit: 5000 })).every((row) => row.retryCount === 0),
    'nothing counted a retry',
  );
  const line = sup.output.find((l) => /put back \d+ jobs claimed ahead and not started/.test(l));
  t.comment(line ?? 'the backlog had nothing held at the moment of the signal');

  // A second supervisor finishes the rest; every job ran exactly once.
  const again = startSupervisor(t, db, { LUXJOB_WORKERS: '2' });
  await ready(again);
  await waitFor(async () => (await lux.counts()).d === total || undefined, 60_000, 'all done');
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
  const runs = readRunLog(db.dir).map(([id]) => Number(id));
  t.equal(runs.length, total, 'every job ran once');
  t.equal(new Set(runs).size, total, 'none twice');
});
