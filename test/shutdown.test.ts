// SIGTERM/SIGINT: stop claiming, let jobs finish within the shutdown timeout, put back the rest.
import t from 'tap';
import { client, eachDatabase, waitFor } from './helpers/databases';
import { isAlive, ready, startSupervisor } from './helpers/supervisor';

eachDatabase(t, 'graceful shutdown', async (t, db) => {
  const lux = client(t, db);

  // A 3-second job completes; the supervisor exits 0.
  const a = startSupervisor(t, db);
  await ready(a);
  const short = await lux.add('sleep', { ms: 3000 });
  const aborts = await lux.add('waits_for_abort', {});
  await waitFor(async () => (await lux.counts()).r === 2 || undefined, 10_000, 'both jobs running');
  const workers = a.workerPids();
  const registered = await lux.supervisors();
  t.equal(registered.length, 1, 'the running supervisor is registered');
  t.match(registered[0], { pid: a.pid, workers: 2 });
  const queued = await lux.add('noop', {}, { runAt: new Date(Date.now() + 100) });
  a.child.kill('SIGTERM');
  t.equal(await a.exited, 0, 'exits 0');
  t.match(
    await lux.get(short.id),
    { status: 'd', response: 'slept 3000', retryCount: 0 },
    'the running job finished',
  );
  t.match(
    await lux.get(aborts.id),
    { status: 'd', response: 'aborted cleanly' },
    "the handler's AbortSignal fired",
  );
  t.equal((await lux.get(queued.id))?.status, 's', 'nothing new was claimed after the signal');
  t.equal((await lux.counts()).r, 0, 'no row stays running');
  t.ok(
    workers.every((pid) => !isAlive(pid)),
    'its workers are gone',
  );
  t.same(await lux.supervisors(), [], 'and it deregistered');

  // A job longer than the shutdown timeout is killed and put back, without counting a failure.
  const b = startSupervisor(t, db, { LUXJOB_SHUTDOWN_TIMEOUT: '1' });
  await ready(b);
  await waitFor(
    async () => (await lux.get(queued.id))?.status === 'd' || undefined,
    10_000,
    'the queued job',
  );
  const long = await lux.add('sleep', { ms: 60_000 });
  await waitFor(
    async () => (await lux.get(long.id))?.status === 'r' || undefined,
    10_000,
    'long job running',
  );
  const signalledAt = Date.now();
  b.child.kill('SIGTERM');
  t.equal(await b.exited, 0);
  const tookMs = Date.now() - signalledAt;
  t.ok(tookMs < 5000, `stopped ${tookMs} ms after SIGTERM with a 1 s shutdown timeout`);
  const back = await lux.get(long.id);
  t.match(
    back,
    { status: 's', retryCount: 0, lockedBy: null },
    'put back to run again, retry_count unchanged',
  );
  t.ok(back!.runAt!.getTime() <= Date.now(), 'and due at once');

  // A second signal skips the wait.
  const c = startSupervisor(t, db, { LUXJOB_SHUTDOWN_TIMEOUT: '60' });
  await ready(c);
  await waitFor(
    async () => (await lux.get(long.id))?.status === 'r' || undefined,
    10_000,
    'long job running again',
  );
  const firstSignal = Date.now();
  c.child.kill('SIGTERM');
  await c.waitForLine(/received SIGTERM: no new jobs/);
  c.child.kill('SIGINT');
  t.equal(await c.exited, 0);
  t.ok(Date.now() - firstSignal < 5000, `a second signal stops at once (${Date.now() - firstSignal} ms)`);
  t.match(await lux.get(long.id), { status: 's', retryCount: 0 });
});
