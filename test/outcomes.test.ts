// Each kind of ending (value, throw, rejection, process.exit, endless loop) lands in the right status.
import t from 'tap';
import { procStat } from '../dist/cpu-hogs.js';
import { client, eachDatabase, waitFor } from './helpers/databases';
import { ready, startSupervisor } from './helpers/supervisor';

eachDatabase(t, 'outcomes', async (t, db) => {
  const lux = client(t, db);
  const sup = startSupervisor(t, db, { LUXJOB_WORKERS: '3' });
  await ready(sup);
  const niceOf = (pid: number) => procStat(pid)!.nice;
  t.same(
    sup.workerPids().map(niceOf),
    [5, 5, 5].map((n) => n + niceOf(sup.pid)),
    'workers run 5 below the supervisor’s CPU priority (LUXJOB_WORKER_NICE)',
  );

  const spin = await lux.add('spin', {});
  const spinAddedAt = Date.now();
  // Let the endless job start first, so the others run while it spins.
  await waitFor(async () => (await lux.get(spin.id))?.status === 'r', 10_000, 'spin to start');
  const ids = {
    noop: await lux.add('noop', {}),
    value: await lux.add('value', { n: 7 }),
    text: await lux.add('text', { to: 'user@example.com' }),
    throws: await lux.add('throws', {}),
    rejects: await lux.add('rejects', {}),
    exits: await lux.add('exits', {}),
  };

  const settled = async (id: number) => {
    const job = await lux.get(id);
    return job && job.status !== 's' && job.status !== 'r' ? job : undefined;
  };
  const noop = await waitFor(() => settled(ids.noop.id), 15_000, 'noop');
  t.equal(noop.status, 'd');
  t.equal(noop.response, '');
  t.equal(noop.retryCount, 0);
  t.equal(noop.runAt, null, 'a finished one-off has no next run');

  const value = await waitFor(() => settled(ids.value.id), 15_000, 'value');
  t.equal(value.status, 'd');
  t.same(JSON.parse(value.response!), { ok: true, n: 7 }, 'the returned value is the response');

  const text = await waitFor(() => settled(ids.text.id), 15_000, 'text');
  t.equal(text.response, 'sent to user@example.com', 'a string result is stored as it is');

  for (const [name, errorName, message] of [
    ['throws', 'TypeError', 'boom'],
    ['rejects', 'RangeError', 'nope'],
  ] as const) {
    const job = await waitFor(() => settled(ids[name].id), 15_000, name);
    t.equal(job.status, 'f', `${name}: failed, retry pending`);
    t.equal(job.retryCount, 1);
    const response = JSON.parse(job.response!);
    t.equal(response.kind, 'error');
    t.equal(response.error, errorName);
    t.equal(response.message, message);
    t.match(response.at, /jobs\.ts/, 'the first stack frame points into the catalogue');
    const wait = job.runAt!.getTime() - job.finishedAt!.getTime();
    t.ok(Math.abs(wait - 60_000) < 50, `${name}: first retry 60 s after the failure (got ${wait} ms)`);
  }

  const exits = await waitFor(() => settled(ids.exits.id), 15_000, 'exits');
  t.equal(exits.status, 'f');
  t.equal(JSON.parse(exits.response!).kind, 'crash');
  t.match(JSON.parse(exits.response!).message, /exited with code 3 while running the job/);

  // The others finished while the endless job still spun.
  t.ok(noop.finishedAt!.getTime() < spinAddedAt + 1000 + 500, 'other jobs ran while the endless job spun');

  const spun = await waitFor(() => settled(spin.id), 15_000, 'spin to be killed');
  t.equal(spun.status, 'f');
  const response = JSON.parse(spun.response!);
  t.equal(response.kind, 'timeout');
  t.match(
    response.message,
    /timed out after 1s: worker \d+ killed with SIGKILL \d+ ms after the job started/,
  );
  const ranFor = spun.finishedAt!.getTime() - spun.startedAt!.getTime();
  t.ok(ranFor >= 1000 && ranFor < 2500, `killed within the timeout plus a margin (ran ${ranFor} ms)`);

  // The pool replaced the killed and the exited worker: more jobs still run.
  const after = await lux.add('value', { n: 1 });
  const afterJob = await waitFor(() => settled(after.id), 15_000, 'a job after the kills');
  t.equal(afterJob.status, 'd');

  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0, 'exits 0 on SIGTERM');
});
