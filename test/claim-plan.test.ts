// The claim must walk the claim index in run order and stop at LIMIT, even
// right after a burst the database has no statistics for: a plan that sorts
// every waiting row makes each claim cost as much as the whole backlog.
import t from 'tap';
import { openDatabase } from '../dist/db.js';
import { CLAIM_STATEMENTS } from '../dist/queries/claim.js';
import { execute } from '../dist/queries/statements.js';
import { client, eachDatabase } from './helpers/databases';

const BACKLOG = 20_000;

eachDatabase(t, 'a fresh backlog is claimed through the claim index, unsorted', async (t, db) => {
  const lux = client(t, db);
  // One statement, no ANALYZE afterwards: what a burst of jobs looks like to the planner.
  await lux.addMany(Array.from({ length: BACKLOG }, () => ({ name: 'noop' as const, opts: {} })));
  const database = openDatabase(db.url);
  t.teardown(() => database.knex.destroy());
  const now = new Date();
  const sql = CLAIM_STATEMENTS[db.kind];
  const params = db.kind === 'mysql' ? [now, 8] : ['sup', now, now, now, now, 8];
  const explain = db.kind === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN';
  const { rows } = await execute(database, `${explain} ${sql}`, params);
  const plan = rows.map((row) => Object.values(row as Record<string, unknown>).join(' ')).join('\n');
  t.match(plan, /lux_jobs_claim/, 'the claim index is used');
  if (db.kind === 'pg') {
    const { rows: setting } = await execute(database, 'SHOW enable_bitmapscan');
    t.equal(setting[0]?.enable_bitmapscan, 'off', 'LuxJob connections run without bitmap scans');
  }
  // The bad plan: every waiting row fetched (a bitmap scan) and sorted into run order. Sorting
  // the few claimed ids afterwards (PostgreSQL's `id IN (…)`) is harmless.
  t.notMatch(
    plan,
    /Bitmap|Sort Key: [\w.]*priority|TEMP B-TREE FOR ORDER BY|filesort/i,
    `no sort of the backlog:\n${plan}`,
  );
});
