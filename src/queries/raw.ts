import type { Knex } from 'knex';
import type { Dialect } from '../db';

/** knex.raw returns a different shape per driver; this gives the rows. */
export function rowsOf(dialect: Dialect, result: unknown): Record<string, unknown>[] {
  if (dialect === 'pg') return (result as { rows: Record<string, unknown>[] }).rows;
  if (dialect === 'mysql') return (result as [Record<string, unknown>[]])[0];
  return result as Record<string, unknown>[];
}

export type Executor = Knex | Knex.Transaction;
