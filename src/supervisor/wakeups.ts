import fs from 'node:fs';
import path from 'node:path';
import type { Client } from 'pg';
import type { Database } from '../db';
import { knexConfigFromUrl } from '../db';

/** Something that tells the supervisor "a job may have arrived" sooner than its next poll. */
export interface WakeSource {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * PostgreSQL only: one connection LISTENing on the schema's channel, so an
 * insert anywhere wakes this supervisor at once instead of at its next poll.
 * Polling stays as the safety net; a lost connection is re-opened with backoff.
 */
export class PgNotifyListener implements WakeSource {
  private client: Client | undefined;
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly db: Database,
    private readonly url: string,
    private readonly onJob: () => void,
    private readonly onTrouble: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    if (this.stopped) return;
    const { Client: PgClient } = require('pg') as typeof import('pg');
    const { config } = knexConfigFromUrl(this.url);
    const client = new PgClient(config.connection as import('pg').ClientConfig);
    this.client = client;
    client.on('notification', () => this.onJob());
    client.on('error', (err) => this.reconnect(err));
    try {
      await client.connect();
      if (this.stopped) {
        await client.end();
        return;
      }
      if (this.db.schema) await client.query(`SET search_path TO ${client.escapeIdentifier(this.db.schema)}`);
      const { rows } = await client.query('SELECT current_schema() AS schema');
      await client.query(`LISTEN ${client.escapeIdentifier(`luxjob:${rows[0].schema}`)}`);
      this.failures = 0;
      // Anything inserted while we were not listening is found by this claim.
      this.onJob();
    } catch (err) {
      this.reconnect(err as Error);
    }
  }

  private reconnect(err: Error): void {
    const client = this.client;
    this.client = undefined;
    client?.removeAllListeners('notification');
    client?.end().catch(() => undefined);
    if (this.stopped || !client) return;
    this.failures++;
    const wait = Math.min(10_000, 250 * 2 ** Math.min(this.failures, 5));
    if (this.failures === 1)
      this.onTrouble(`LISTEN connection lost (${err.message}); polling until it is back`);
    setTimeout(() => void this.start(), wait).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

/**
 * SQLite only: every commit from another process (an `add()` from the app or
 * the CLI) appends to the database's -wal file; an inotify watch on its folder
 * wakes the supervisor at once. A commit that adds nothing only costs an
 * empty claim.
 */
export class SqliteWalWatcher implements WakeSource {
  private watcher: fs.FSWatcher | undefined;

  constructor(
    private readonly file: string,
    private readonly onJob: () => void,
    private readonly onTrouble: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    const wal = `${path.basename(this.file)}-wal`;
    try {
      this.watcher = fs.watch(path.dirname(path.resolve(this.file)), (_event, name) => {
        if (name === wal) this.onJob();
      });
      this.watcher.on('error', (err) =>
        this.onTrouble(`cannot watch the database file (${err.message}); polling only`),
      );
    } catch (err) {
      this.onTrouble(`cannot watch the database file (${(err as Error).message}); polling only`);
    }
  }

  async stop(): Promise<void> {
    this.watcher?.close();
  }
}

/** The wake-up source for a database: NOTIFY on PostgreSQL, the WAL file on SQLite, none on MySQL. */
export function wakeSourceFor(
  db: Database,
  url: string,
  onJob: () => void,
  onTrouble: (message: string) => void,
): WakeSource | undefined {
  if (db.dialect === 'pg') return new PgNotifyListener(db, url, onJob, onTrouble);
  if (db.dialect === 'sqlite') {
    const file = (knexConfigFromUrl(url).config.connection as { filename: string }).filename;
    return file === ':memory:' ? undefined : new SqliteWalWatcher(file, onJob, onTrouble);
  }
  return undefined;
}
