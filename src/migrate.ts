import type { Database } from './db';
import { explainDatabaseError } from './db';
import { LuxJobError } from './errors';
import { MIGRATIONS } from './migrations-config';

const LOCK_TABLE = `${MIGRATIONS.tableName}_lock`;

export class MigrationLockedError extends LuxJobError {
  constructor(url: string, waitedSeconds: number) {
    super(
      'LUXJOB_MIGRATION_LOCKED',
      `another migration has held the lock in ${url} for over ${waitedSeconds}s; if none is running (a migration was killed), run \`luxjob migrate --unlock\``,
    );
  }
}

/**
 * knex inserts its single lock row with a check-then-insert, so two first
 * migrations at once can leave two rows, after which knex reports "locked"
 * forever. Keep the first row and drop the surplus unlocked ones.
 */
async function healDuplicateLockRows(db: Database): Promise<void> {
  try {
    const rows = (await db.knex(LOCK_TABLE).select('index').orderBy('index')) as Array<{ index: number }>;
    if (rows.length > 1)
      await db.knex(LOCK_TABLE).where('index', '>', rows[0]!.index).where('is_locked', 0).delete();
  } catch {
    // The lock table does not exist yet: nothing to heal.
  }
}

/** Frees a migration lock left behind by a killed migration (`luxjob migrate --unlock`). */
export async function unlockMigrations(db: Database): Promise<void> {
  await healDuplicateLockRows(db);
  await db.knex.migrate.forceFreeMigrationsLock(MIGRATIONS);
}

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
      if (!raced || Date.now() > deadline) {
        const locked = err instanceof Error && err.name === 'MigrationLocked';
        throw locked
          ? new MigrationLockedError(db.safeUrl, Math.round(waitMs / 1000))
          : explainDatabaseError(err, db);
      }
      await healDuplicateLockRows(db);
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
