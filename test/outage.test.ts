import t from 'tap';
import { client, eachDatabase, readRunLog, waitFor } from './helpers/databases';
import { startProxy } from './helpers/proxy';
import { ready, startSupervisor } from './helpers/supervisor';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

eachDatabase(
  t,
  'database outage',
  async (t, db) => {
    const lux = client(t, db);
    const real = new URL(db.url);
    const proxy = await startProxy(real.hostname, Number(real.port || (db.kind === 'mysql' ? 3306 : 5432)));
    t.teardown(() => proxy.close());
    const viaProxy = new URL(db.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;

    const sup = startSupervisor(t, { ...db, url: viaProxy.toString() }, { LUXJOB_WORKERS: '2' });
    await ready(sup);

    const ids: number[] = [];
    const start = Date.now();
    let cutAt = 0;
    let restoredAt = 0;
    // 16 s of jobs, one every 100 ms, added straight to the database (not through the proxy).
    while (Date.now() - start < 16_000) {
      ids.push((await lux.add('record', { ms: 150 })).id);
      if (!cutAt && Date.now() - start > 2000) {
        await proxy.cut();
        cutAt = Date.now();
      }
      if (cutAt && !restoredAt && Date.now() - cutAt >= 10_000) {
        await proxy.restore();
        restoredAt = Date.now();
      }
      await sleep(100);
    }
    await waitFor(
      async () => (await lux.counts()).d === ids.length || undefined,
      60_000,
      'every job to be done',
    ).catch(async (err) => {
      console.error(JSON.stringify(await lux.counts()), sup.output.slice(-30).join('\n'));
      throw err;
    });
    const caughtUp = Date.now();

    t.equal(sup.child.exitCode, null, 'the supervisor survived');
    const unavailable = /database unavailable: .*; workers keep running, results are kept until it is back/;
    t.match(await sup.waitForLine(unavailable, 5000), unavailable);
    t.match(await sup.waitForLine(/database is back/, 5000), /database is back/);
    const runs = readRunLog(db.dir).map(([id]) => Number(id));
    t.equal(runs.length, ids.length, `${ids.length} jobs, ${runs.length} runs`);
    t.equal(new Set(runs).size, ids.length, 'no job ran twice');
    t.same(await lux.counts(), { s: 0, r: 0, f: 0, d: ids.length, x: 0 }, 'every job ends d, none failed');
    t.pass(
      `cut for ${((restoredAt - cutAt) / 1000).toFixed(1)} s; caught up ${((caughtUp - restoredAt) / 1000).toFixed(1)} s after the database came back`,
    );

    sup.child.kill('SIGTERM');
    t.equal(await sup.exited, 0);
  },
  { only: ['mysql', 'pg'] },
);
