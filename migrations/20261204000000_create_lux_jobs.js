// @ts-check
// Plain CommonJS on purpose: `npx knex migrate:latest` and `luxjob migrate`
// (compiled code, no TypeScript loader) must load the very same file under the
// same name, or knex would think the migration directory changed.

/** @param {import('knex').Knex} knex */
exports.up = async function up(knex) {
  await knex.schema.createTable('lux_jobs', (t) => {
    t.bigIncrements('id');
    t.string('name', 191).notNullable();
    t.text('opts', 'mediumtext').notNullable();
    // Lower runs first (as in graphile-worker, Solid Queue, BullMQ).
    t.integer('priority').notNullable().defaultTo(0);
    // Next time the row should run; NULL once it must never run again by itself.
    t.datetime('run_at', { precision: 3 }).nullable();
    t.string('status_sid', 1).notNullable().defaultTo('s');
    // 1 while the row waits for a run (s, f, or a recurring d/x), 0 while running or finished.
    // The claim index covers only rows with queued = 1, so finished rows never sit in the claim's path.
    t.integer('queued').notNullable().defaultTo(1);
    t.integer('retry_count').notNullable().defaultTo(0);
    t.text('response', 'mediumtext').nullable();
    // 'recurring:<name>' for a recurring row; a dedup key while a one-off job is pending.
    t.string('unique_key', 191).nullable().unique('lux_jobs_unique_key');
    // Recurring rows: 'every <seconds>' or 'cron <expr>' (plus ' tz <zone>').
    t.string('schedule', 255).nullable();
    t.string('locked_by', 191).nullable();
    t.datetime('lease_until', { precision: 3 }).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
    t.datetime('started_at', { precision: 3 }).nullable();
    t.datetime('finished_at', { precision: 3 }).nullable();
    // Every claim and finish changes indexed columns, so each update writes a new entry
    // into every index: keep them few (on PostgreSQL six indexes cost more than the queries).
    // Serves pruning, `list --status`, and the heartbeat and recovery (status_sid = 'r').
    t.index(['status_sid', 'finished_at'], 'lux_jobs_status_finished');
  });

  // Serves the claim: waiting rows in (priority, run_at, id) order, so the scan stops at LIMIT.
  // id last: PostgreSQL indexes do not carry the primary key, and without it every claim sorted
  // all waiting rows. Partial where the database allows it, so running and finished rows
  // (queued = 0) never enter it; MariaDB/MySQL index every row and lead with queued instead.
  if (knex.client.config.client === 'mysql2') {
    await knex.schema.alterTable('lux_jobs', (t) =>
      t.index(['queued', 'priority', 'run_at', 'id'], 'lux_jobs_claim'),
    );
  } else {
    await knex.raw('CREATE INDEX lux_jobs_claim ON lux_jobs (priority, run_at, id) WHERE queued = 1');
  }

  if (knex.client.config.client === 'pg') {
    // PostgreSQL wakes supervisors at once: every insert statement notifies the
    // schema's channel, which each supervisor LISTENs on (src/supervisor/listener.ts).
    await knex.raw(`
      CREATE OR REPLACE FUNCTION lux_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('luxjob:' || TG_TABLE_SCHEMA, '');
        RETURN NULL;
      END $$`);
    await knex.raw(
      'CREATE TRIGGER lux_jobs_notify AFTER INSERT ON lux_jobs FOR EACH STATEMENT EXECUTE FUNCTION lux_jobs_notify()',
    );
  }

  await knex.schema.createTable('lux_supervisors', (t) => {
    t.string('id', 191).primary();
    t.string('host', 255).notNullable();
    t.integer('pid').notNullable();
    t.integer('workers').notNullable();
    t.string('version', 32).notNullable();
    t.datetime('started_at', { precision: 3 }).notNullable();
    t.datetime('heartbeat_at', { precision: 3 }).notNullable();
    t.index(['heartbeat_at'], 'lux_supervisors_heartbeat');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTableIfExists('lux_supervisors');
  await knex.schema.dropTableIfExists('lux_jobs');
  if (knex.client.config.client === 'pg') await knex.raw('DROP FUNCTION IF EXISTS lux_jobs_notify()');
};
