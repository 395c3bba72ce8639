import { JOBS_TABLE } from '../constants';
import type { Database } from '../db';
import { retryConflicts } from '../db';
import type { RowUpdate } from '../transitions';

export interface Finish {
  id: number;
  update: RowUpdate;
}

/**
 * Records how runs ended, many in one transaction (one fsync on SQLite, one
 * commit elsewhere). Each update only touches a row this supervisor still
 * holds: a row whose lease expired and was recovered by another supervisor is
 * left alone, and its id is returned so the caller can say so.
 */
export async function finishJobs(
  db: Database,
  supervisorId: string,
  finishes: Finish[],
  now = new Date(),
): Promise<{ lost: number[] }> {
  if (finishes.length === 0) return { lost: [] };
  return retryConflicts(() =>
    db.knex.transaction(async (trx) => {
      const lost: number[] = [];
      for (const { id, update } of finishes) {
        const changed = await trx(JOBS_TABLE)
          .where({ id, locked_by: supervisorId, status_sid: 'r' })
          .update({ ...update, updated_at: now, locked_by: null, lease_until: null });
        if (Number(changed) === 0) lost.push(id);
      }
      return { lost };
    }),
  );
}
