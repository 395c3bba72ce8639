#!/usr/bin/env node
/**
 * `node dist/supervisor.js`: runs one supervisor configured from the
 * environment until SIGTERM/SIGINT. Also what `luxjob start` calls.
 */
import { loadCatalogue } from './catalogue';
import { type LuxJobConfig, loadConfig } from './config';
import { openDatabase } from './db';
import { LuxJobError } from './errors';
import { createLogger, flushLogger, type Logger } from './logger';
import { migrate } from './migrate';
import { startSupervisor } from './supervisor/supervisor';

export interface StartOptions {
  /** Run pending migrations first (the quick start does; production runs `luxjob migrate` in its deploy). */
  migrate?: boolean;
}

/** Starts a supervisor and resolves with the process exit code once it has stopped. */
export async function runSupervisorProcess(
  overrides: Partial<LuxJobConfig> = {},
  options: StartOptions = {},
): Promise<number> {
  let logger: Logger | undefined;
  const db = { current: undefined as ReturnType<typeof openDatabase> | undefined };
  try {
    const config = loadConfig(overrides);
    logger = createLogger({ dir: config.logDir, format: config.logFormat, level: config.logLevel });
    if (!config.jobsFile) {
      throw new LuxJobError(
        'LUXJOB_CONFIG',
        'no job catalogue: set LUXJOB_JOBS=path/to/jobs.js or pass --jobs',
      );
    }
    const catalogue = await loadCatalogue(config.jobsFile);
    db.current = openDatabase(config.databaseUrl);
    if (options.migrate) {
      const { applied } = await migrate(db.current);
      if (applied.length > 0) logger.info(`applied migrations: ${applied.join(', ')}`);
    }
    const log = logger;
    // A bug must not take down a supervisor whose workers hold running jobs: log it loudly and go on.
    const onStray = (err: unknown) =>
      log.error(`unexpected error (please report): ${(err as Error)?.stack ?? String(err)}`);
    process.on('unhandledRejection', onStray);
    const supervisor = await startSupervisor({ config, db: db.current, catalogue, logger });
    // Signals only set a flag; the supervisor's loop acts on it.
    const onSignal = (signal: NodeJS.Signals) => supervisor.requestStop(`received ${signal}`);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    await supervisor.stopped;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('unhandledRejection', onStray);
    await db.current.knex.destroy();
    await flushLogger(logger);
    return 0;
  } catch (err) {
    const message =
      err instanceof LuxJobError
        ? err.message
        : err instanceof Error
          ? (err.stack ?? err.message)
          : String(err);
    if (logger) {
      logger.error(`cannot start: ${message}`);
      await flushLogger(logger);
    } else {
      console.error(`luxjob: cannot start: ${message}`);
    }
    await db.current?.knex.destroy().catch(() => undefined);
    return 1;
  }
}

if (require.main === module) {
  runSupervisorProcess().then((code) => process.exit(code));
}
