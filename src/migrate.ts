import type { Database } from './db';
import { explainDatabaseError } from './db';
import { MIGRATIONS } from './migrations-config';

export interface MigrateResult {
  /** Migration file names applied by this call (empty when already up to date). */
  applied: string[];
}

/**
 * Brings the schema up to date. Safe to run from many processes at once:
 * knex's lock table serialises them, and a process that finds the lock taken
 * (or loses the race to create the bookkeeping tables) waits and tries again
 * rather than failing a deploy.
 */
export async function migrate(db: Database, { waitMs = 60_000 } = {}): Promise<MigrateResult> {
  const deadline = Date.now() + waitMs;
  if (db.schema) await db.knex.raw('CREATE SCHEMA IF NOT EXISTS ??', [db.schema]).catch(() => undefined);
  for (let attempt = 1; ; attempt++) {
    try {
      const [, applied] = (await db.knex.migrate.latest(MIGRATIONS)) as [number, string[]];
      return { applied };
    } catch (err) {
      const raced =
        (err instanceof Error && err.name === 'MigrationLocked') ||
        /already exists|Duplicate entry|duplicate key|UNIQUE constraint|already locked/i.test(String(err));
      if (!raced || Date.now() > deadline) throw explainDatabaseError(err, db);
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * attempt)));
    }
  }
}

/** The state of each migration, for `luxjob migrate --status`. */
export async function migrationStatus(db: Database): Promise<{ completed: string[]; pending: string[] }> {
  const [completed, pending] = (await db.knex.migrate.list(MIGRATIONS)) as [
    Array<{ name: string } | string>,
    Array<{ file: string } | string>,
  ];
  return {
    completed: completed.map((m) => (typeof m === 'string' ? m : m.name)),
    pending: pending.map((m) => (typeof m === 'string' ? m : m.file)),
  };
}
