import { JOBS_TABLE } from '../constants';
import type { Database } from '../db';

/**
 * Deletes finished one-off jobs (d, not queued) older than `before`, in small
 * batches so a large backlog of history never holds a long lock.
 */
export async function pruneFinished(db: Database, before: Date, batch = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = (
      await db
        .knex(JOBS_TABLE)
        .select('id')
        .where({ status_sid: 'd', queued: 0 })
        .where('finished_at', '<', before)
        .limit(batch)
    ).map((r: { id: number }) => r.id);
    if (ids.length === 0) return total;
    total += Number(
      await db.knex(JOBS_TABLE).whereIn('id', ids).where({ status_sid: 'd', queued: 0 }).delete(),
    );
    if (ids.length < batch) return total;
  }
}
