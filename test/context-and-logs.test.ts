// A handler's ctx.add() enqueues a job that then runs; the log file names every start, finish and failure.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { client, eachDatabase, waitFor, waitForDone } from './helpers/databases';
import { ready, startSupervisor } from './helpers/supervisor';

eachDatabase(t, 'ctx and logs', async (t, db) => {
  const lux = client(t, db);
  const sup = startSupervisor(t, db);
  await ready(sup);

  const parent = await lux.add('spawns', { n: 41 });
  const done = await waitForDone(lux, parent.id, 15_000, 'parent');
  const childId = JSON.parse(done.response!).child as number;
  const child = await waitForDone(lux, childId, 15_000, 'child');
  t.equal(child.name, 'value');
  t.same(JSON.parse(child.response!), { ok: true, n: 42 }, 'the enqueued job ran with its opts');

  const refused = await lux.add('spawns_bad', {});
  const refusedRow = await waitForDone(lux, refused.id, 15_000, 'spawns_bad');
  t.match(
    refusedRow.response,
    /^refused: unknown job "no_such_job": the catalogue defines/,
    'ctx.add() refuses unknown names with the same error',
  );

  const failing = await lux.add('throws', {});
  await waitFor(async () => (await lux.get(failing.id))?.status === 'f', 15_000, 'throws');
  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0);

  const log = fs.readFileSync(path.join(db.dir, 'log', 'lux_job.log'), 'utf8');
  t.match(log, /info +supervisor \S+ starting: 2 workers/);
  t.match(log, /job spin: one-off, timeout 1s/, 'registered jobs are listed with schedule and timeout');
  t.notMatch(log, /\] started \(attempt/, 'starts are debug lines, not written at info');
  t.match(
    log,
    new RegExp(`\\[spawns #${parent.id}\\] spawned a child job \\{"child":${childId}\\}`),
    'ctx.logger lines carry the job',
  );
  t.match(log, new RegExp(`\\[spawns #${parent.id}\\] finished in \\d+ ms`));
  t.match(
    log,
    new RegExp(
      `\\[throws #${failing.id}\\] failed \\(error\\) after \\d+ ms: TypeError: boom; retry 1/7 at 20\\d\\d-`,
    ),
  );
  t.match(log, /supervisor \S+ stopped/);
});

eachDatabase(t, 'debug logs name every start', async (t, db) => {
  const lux = client(t, db);
  const sup = startSupervisor(t, db, { LUXJOB_LOG_LEVEL: 'debug' });
  await ready(sup);
  const { id } = await lux.add('noop', {});
  await waitForDone(lux, id, 15_000, 'noop');
  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0);
  const log = fs.readFileSync(path.join(db.dir, 'log', 'lux_job.log'), 'utf8');
  t.match(log, new RegExp(`debug \\[noop #${id}\\] started \\(attempt 1\\)`));
  t.match(log, new RegExp(`info +\\[noop #${id}\\] finished in \\d+ ms`));
});

eachDatabase(t, 'json logs', async (t, db) => {
  const lux = client(t, db);
  const sup = startSupervisor(t, db, { LUXJOB_LOG_FORMAT: 'json' });
  await ready(sup);
  const { id } = await lux.add('spin', {});
  await waitFor(async () => (await lux.get(id))?.status === 'f', 15_000, 'spin killed');
  sup.child.kill('SIGTERM');
  await sup.exited;
  const entries = fs
    .readFileSync(path.join(db.dir, 'log', 'lux_job.log'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const killed = entries.find((e) => e.jobId === id && /killed/.test(e.message));
  t.ok(killed, 'the timeout kill is one JSON line');
  t.equal(killed.level, 'warn');
  t.equal(killed.job, 'spin');
  t.match(killed.message, /killed after \d+ ms: TimeoutError: timed out after 1s/);
  t.ok(entries.every((e) => typeof e.timestamp === 'string'));
});
