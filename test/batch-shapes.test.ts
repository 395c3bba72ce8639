// Finish batches are padded to a power of two so each connection prepares a
// handful of statement shapes, not one per batch size; the repeats must change
// nothing: every row is written once, and a row that is no longer ours is
// still reported lost and left alone.
import t from 'tap';
import { openDatabase } from '../dist/db.js';
import { claimJobs } from '../dist/queries/claim.js';
import { finishJobs, padToShape } from '../dist/queries/finish.js';
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

eachDatabase(t, 'a padded finish writes each row once and still finds a lost one', async (t, db) => {
  const lux = client(t, db);
  await lux.addMany(Array.from({ length: 5 }, (_, i) => ({ name: 'noop' as const, opts: { i } })));
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const now = new Date();
  const { jobs } = await claimJobs(database, {
    supervisorId: 'sup-a',
    limit: 5,
    now,
    leaseUntil: new Date(now.getTime() + 60_000),
  });
  t.equal(jobs.length, 5, 'five claimed');
  // Another supervisor took the last one over (its lease had run out, say).
  const stolen = jobs[4]!;
  await database.knex('lux_jobs').where({ id: stolen.id }).update({ locked_by: 'sup-b' });
  const finishedAt = new Date();
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
  // Five results, padded to eight: the stolen row is the one repeated.
  const { lost } = await finishJobs(database, 'sup-a', finishes, finishedAt);
  t.same(lost, [stolen.id], 'the row that is no longer ours is reported lost');
  const rows = await database
    .knex('lux_jobs')
    .orderBy('id')
    .select('id', 'status_sid', 'response', 'locked_by');
  t.same(
    rows.slice(0, 4).map((r) => [r.status_sid, r.response, r.locked_by]),
    [0, 1, 2, 3].map((i) => ['d', `"done ${i}"`, null]),
    'the others are done, each with its own response',
  );
  t.same([rows[4].status_sid, rows[4].locked_by], ['r', 'sup-b'], 'the stolen row is untouched');
});
