import t from 'tap';
import { client, eachDatabase, readRunLog, waitFor, waitForDone } from './helpers/databases';
import { isAlive, ready, startSupervisor } from './helpers/supervisor';

/** [jobId, start ms] per run of the `record` job. */
const runsOf = (dir: string) => readRunLog(dir).map((fields) => fields.map(Number) as [number, number]);

eachDatabase(t, 'sigkill with default settings', async (t, db) => {
  const lux = client(t, db);
  const a = startSupervisor(t, db, { LUXJOB_WORKERS: '3', LUXJOB_POLL_INTERVAL: '3' });
  await ready(a);
  const ids = [];
  // Long enough to still be running after B has started, even on a loaded machine.
  for (let i = 0; i < 3; i++) ids.push((await lux.add('record', { ms: 8000 })).id);
  await waitFor(async () => runsOf(db.dir).length === 3 || undefined, 15_000, 'three jobs running on A');
  const workers = a.workerPids();
  t.equal(workers.length, 3, 'A has three workers');
  // B starts now and is alive when A dies; everything else keeps its defaults.
  const b = startSupervisor(t, db, { LUXJOB_WORKERS: '3', LUXJOB_POLL_INTERVAL: '3' });
  await ready(b);
  const running = await Promise.all(ids.map(async (id) => (await lux.get(id))?.status));
  t.same(running, ['r', 'r', 'r'], 'all three still running on A when it is killed');
  a.child.kill('SIGKILL');
  const killedAt = Date.now();
  await a.exited;

  await waitFor(async () => workers.every((pid) => !isAlive(pid)) || undefined, 5000, "A's workers to exit");
  t.pass(`A's workers exited ${Date.now() - killedAt} ms after A was killed`);

  await waitFor(async () => runsOf(db.dir).length === 6 || undefined, 40_000, 'the jobs to run again').catch(
    async (err) => {
      console.error(
        JSON.stringify({ runs: runsOf(db.dir), killedAt, rows: await lux.list() }),
        b.output.slice(-25).join('\n'),
      );
      throw err;
    },
  );
  const rerunAfter =
    Math.max(
      ...runsOf(db.dir)
        .slice(3)
        .map(([, at]) => at),
    ) - killedAt;
  t.ok(
    rerunAfter < 30_000,
    `all three running again ${(rerunAfter / 1000).toFixed(1)} s after the SIGKILL (lease 15 s, heartbeat 5 s)`,
  );
  for (const id of ids) {
    const job = await waitForDone(lux, id, 30_000, `job ${id} to finish`);
    t.equal(job.retryCount, 1, 'the lost run counts as a failure');
  }
  t.equal((await lux.counts()).r, 0, 'no row stays running');
  // Console lines reach the pipe in batches, up to 50 ms after they were logged.
  t.match(await b.waitForLine(/recovering from lost supervisor/, 5000), /recovering from lost supervisor/);
  b.child.kill('SIGTERM');
  t.equal(await b.exited, 0);
});

eachDatabase(t, 'long job under a live supervisor', async (t, db) => {
  const lux = client(t, db);
  // Lease far shorter than the job: only heartbeats keep it.
  const fast = { LUXJOB_LEASE: '1', LUXJOB_HEARTBEAT_INTERVAL: '0.2' };
  const a = startSupervisor(t, db, fast);
  const b = startSupervisor(t, db, fast);
  await Promise.all([ready(a), ready(b)]);
  const { id } = await lux.add('record', { ms: 5000 });
  const job = await waitForDone(lux, id, 20_000, 'the long job');
  t.equal(job.retryCount, 0, 'never recovered while its supervisor heartbeats');
  t.equal(runsOf(db.dir).length, 1, 'ran once');
  t.notMatch([...a.output, ...b.output].join('\n'), /recovering/);

  // And with these short settings, a SIGKILL is noticed within about a second.
  const second = await lux.add('record', { ms: 1500 });
  await waitFor(
    async () => (await lux.get(second.id))?.status === 'r' || undefined,
    10_000,
    'second job to start',
  );
  const holder = (await lux.get(second.id))!.lockedBy!;
  const victim = holder.includes(`:${a.pid}:`) ? a : b;
  const survivor = victim === a ? b : a;
  victim.child.kill('SIGKILL');
  const killedAt = Date.now();
  const rerun = await waitForDone(lux, second.id, 15_000, 'recovery with a 1 s lease');
  t.equal(rerun.retryCount, 1);
  t.ok(Date.now() - killedAt < 6000, `recovered and re-run within ${Date.now() - killedAt} ms`);
  survivor.child.kill('SIGTERM');
  t.equal(await survivor.exited, 0);
});

eachDatabase(t, 'a claim whose reply was lost', async (t, db) => {
  // The claim committed, the connection died before the reply: the row is ours in the
  // database but on none of our workers. The heartbeat must notice and hand it back.
  const lux = client(t, db);
  const sup = startSupervisor(t, db, { LUXJOB_HEARTBEAT_INTERVAL: '0.5', LUXJOB_LEASE: '3' });
  await ready(sup);
  const { id } = await lux.add('value', { n: 9 }, { runAt: new Date(Date.now() + 3_600_000) });
  const supervisorId = (await lux.db.knex('lux_supervisors').first()).id as string;
  await lux.db
    .knex('lux_jobs')
    .where({ id })
    .update({
      status_sid: 'r',
      queued: 0,
      locked_by: supervisorId,
      lease_until: new Date(Date.now() + 3000),
      started_at: new Date(Date.now() - 10_000),
    });
  const done = await waitForDone(lux, id, 15_000, 'the orphaned claim to run');
  t.equal(done.retryCount, 0, 'handed back without counting a failure');
  t.same(JSON.parse(done.response!), { ok: true, n: 9 });
  const putBack = new RegExp(`put back 1 jobs claimed while the database connection failed: ${id}`);
  t.match(await sup.waitForLine(putBack, 5000), putBack);
  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0);
});
