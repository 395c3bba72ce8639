import path from 'node:path';

/**
 * Shared by knexfile.ts and `luxjob migrate`. Our own bookkeeping tables, so
 * LuxJob can live in a database whose application also uses knex migrations.
 */
export const MIGRATIONS = {
  directory: path.resolve(__dirname, '..', 'migrations'),
  tableName: 'lux_knex_migrations',
  loadExtensions: ['.js'],
};
