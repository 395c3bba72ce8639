// A failing job retries at 60 × 1.6^(n−1) s and is permanently failed at the 8th failure.
// Instead of waiting 43 minutes, the test moves run_at back after each failure.
import t from 'tap';
import { openDatabase } from '../dist/index.js';
import { client, eachDatabase, waitFor, waitForDone } from './helpers/databases';
import { ready, startSupervisor } from './helpers/supervisor';

eachDatabase(t, 'retries', async (t, db) => {
  const lux = client(t, db);
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const sup = startSupervisor(t, db);
  await ready(sup);

  const { id } = await lux.add('throws', {});
  for (let failure = 1; failure <= 8; failure++) {
    const job = await waitFor(
      async () => {
        const row = await lux.get(id);
        return row &&
          row.status !== 'r' &&
          row.status !== 's' &&
          (row.retryCount === failure || row.status === 'x')
          ? row
          : undefined;
      },
      15_000,
      `failure ${failure}`,
    );
    if (failure <= 7) {
      t.equal(job.status, 'f', `failure ${failure}: retry pending`);
      t.equal(job.retryCount, failure);
      const wait = (job.runAt!.getTime() - job.finishedAt!.getTime()) / 1000;
      const expected = 60 * 1.6 ** (failure - 1);
      t.ok(Math.abs(wait - expected) < 0.01, `retry ${failure} after ${wait} s (expected ${expected})`);
      // Backdate the retry instead of sleeping through it.
      await database
        .knex('lux_jobs')
        .where({ id })
        .update({ run_at: new Date(Date.now() - 1) });
    } else {
      t.equal(job.status, 'x', 'the 8th failure is permanent');
      t.equal(job.retryCount, 7);
      t.equal(job.runAt, null);
      t.match(JSON.parse(job.response!), { kind: 'error', error: 'TypeError', message: 'boom' });
    }
  }

  // A job's own `retries` and ctx.attempt: fails on attempt 1, succeeds on attempt 2.
  const attempt = await lux.add('attempt', {});
  await waitFor(async () => (await lux.get(attempt.id))?.status === 'f', 15_000, 'first attempt to fail');
  await database
    .knex('lux_jobs')
    .where({ id: attempt.id })
    .update({ run_at: new Date(Date.now() - 1) });
  const done = await waitForDone(lux, attempt.id, 15_000, 'second attempt');
  t.equal(done.response, 'succeeded on attempt 2');
  t.equal(done.retryCount, 1, 'retry_count keeps how many retries it took');

  sup.child.kill('SIGTERM');
  t.equal(await sup.exited, 0);
});
