// Workers are replaced after N jobs or past an RSS limit, between jobs, without failing any.
import t from 'tap';
import { client, eachDatabase, waitFor } from './helpers/databases';
import { ready, startSupervisor } from './helpers/supervisor';

eachDatabase(t, 'recycling', async (t, db) => {
  const lux = client(t, db);
  const byCount = startSupervisor(t, db, { LUXJOB_WORKERS: '1', LUXJOB_RECYCLE_AFTER_JOBS: '3' });
  await ready(byCount);
  const ids = [];
  for (let i = 0; i < 9; i++) ids.push((await lux.add('pid', {})).id);
  await waitFor(async () => (await lux.counts()).d === 9 || undefined, 30_000, 'nine jobs');
  const pids = await Promise.all(ids.map(async (id) => Number((await lux.get(id))!.response)));
  t.equal(new Set(pids).size, 3, `one worker, replaced every 3 jobs: pids ${[...new Set(pids)].join(', ')}`);
  t.same(await lux.counts(), { s: 0, r: 0, f: 0, d: 9, x: 0 }, 'no job failed');
  byCount.child.kill('SIGTERM');
  t.equal(await byCount.exited, 0);

  const byRss = startSupervisor(t, db, { LUXJOB_WORKERS: '1', LUXJOB_RECYCLE_RSS_MB: '1' });
  await ready(byRss);
  const more = [];
  for (let i = 0; i < 3; i++) more.push((await lux.add('pid', {})).id);
  await waitFor(async () => (await lux.counts()).d === 12 || undefined, 30_000, 'three more jobs');
  const rssPids = await Promise.all(more.map(async (id) => Number((await lux.get(id))!.response)));
  t.equal(new Set(rssPids).size, 3, 'every worker passes a 1 MiB limit, so each job gets a fresh one');
  t.equal((await lux.counts()).f, 0);
  byRss.child.kill('SIGTERM');
  t.equal(await byRss.exited, 0);
});
