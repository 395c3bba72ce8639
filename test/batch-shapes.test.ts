// Finish batches are padded to a power of two so each connection prepares a
// handful of statement shapes, not one per batch size; the repeats must change
// nothing: every row is written once, and a row that is no longer ours is
// still reported lost and left alone.
import t, { type Test } from 'tap';
import { type Database, openDatabase } from '../dist/db.js';
import { claimJobs } from '../dist/queries/claim.js';
import { type Finish, finishJobs, padToShape } from '../dist/queries/finish.js';
import { client, eachDatabase } from './helpers/databases';

t.test('batches are padded to the next power of two by repeating the last', async (t) => {
  t.same(padToShape([]), []);
  t.same(padToShape([1]), [1]);
  t.same(padToShape([1, 2, 3]), [1, 2, 3, 3]);
  t.same(padToShape([1, 2, 3, 4, 5]), [1, 2, 3, 4, 5, 5, 5, 5]);
  t.equal(padToShape(Array.from({ length: 128 }, (_, i) => i)).length, 128, '128 stays 128');
  const sizes = new Set(Array.from({ length: 128 }, (_, i) => padToShape(Array(i + 1).fill(0)).length));
  t.same([...sizes], [1, 2, 4, 8, 16, 32, 64, 128], 'batches of 1 to 128 take 8 shapes');
});

type Write = (database: Database, finishes: Finish[], at: Date) => Promise<number[]>;

/**
 * Claims `count` new jobs as sup-a, hands the one at `stolenAt` to sup-b, then
 * writes all `count` results with `write`: exactly the stolen one must be
 * lost, and every other row done with its own response.
 */
async function finishWithOneStolen(
  t: Test,
  database: Database,
  lux: ReturnType<typeof client>,
  count: number,
  stolenAt: number,
  write: Write,
): Promise<void> {
  const since = Number((await database.knex('lux_jobs').max({ m: 'id' }).first())?.m ?? 0);
  await lux.addMany(Array.from({ length: count }, (_, i) => ({ name: 'noop' as const, opts: { i } })));
  const now = new Date();
  const { jobs } = await claimJobs(database, {
    supervisorId: 'sup-a',
    limit: count,
    now,
    leaseUntil: new Date(now.getTime() + 60_000),
  });
  t.equal(jobs.length, count, `${count} claimed`);
  // Another supervisor took this one over (its lease had run out, say).
  const stolen = jobs[stolenAt]!;
  await database.knex('lux_jobs').where({ id: stolen.id }).update({ locked_by: 'sup-b' });
  const finishedAt = new Date(now.getTime() + 1);
  const finishes = jobs.map((job, i) => ({
    id: job.id,
    startedAt: job.startedAt,
    update: {
      status_sid: 'd' as const,
      queued: 0 as const,
      run_at: null,
      retry_count: 0,
      response: `"done ${i}"`,
      finished_at: finishedAt,
      unique_key: null,
    },
  }));
  t.same(await write(database, finishes, finishedAt), [stolen.id], 'the row no longer ours is reported lost');
  const rows: Array<Record<string, unknown>> = await database
    .knex('lux_jobs')
    .where('id', '>', since)
    .orderBy('id')
    .select('id', 'status_sid', 'response', 'locked_by');
  t.same(
    rows.map((r) =>
      r.id === stolen.id ? [r.status_sid, r.locked_by] : [r.status_sid, r.response, r.locked_by],
    ),
    jobs.map((job, i) => (job.id === stolen.id ? ['r', 'sup-b'] : ['d', `"done ${i}"`, null])),
    'the others are done, each with its own response; the stolen row is untouched',
  );
}

eachDatabase(t, 'a padded finish writes each row once and still finds a lost one', async (t, db) => {
  const lux = client(t, db);
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const alone: Write = async (database, finishes, at) =>
    (await finishJobs(database, 'sup-a', finishes, at)).lost;
  // Five results padded to eight: the stolen row is the one repeated.
  await finishWithOneStolen(t, database, lux, 5, 4, alone);
  // Three padded to four, the first stolen: repeats of another row must not hide it.
  await finishWithOneStolen(t, database, lux, 3, 0, alone);
  // The same, carried by the next claim: one statement on PostgreSQL, the unpadded text batch on MariaDB.
  const carried: Write = async (database, finishes, at) => {
    const lease = { supervisorId: 'sup-a', limit: 1, now: at, leaseUntil: new Date(at.getTime() + 60_000) };
    return (await claimJobs(database, lease, finishes)).lost;
  };
  await finishWithOneStolen(t, database, lux, 3, 1, carried);
});
