import fs from 'node:fs';
import path from 'node:path';
import winston from 'winston';
import TransportStream from 'winston-transport';
import type { LogFormat } from './config';

export type Logger = winston.Logger;

export interface LoggerOptions {
  dir: string;
  format: LogFormat;
  level: string;
  /** Also print to the console (stdout); on by default. */
  console?: boolean;
}

export const LOG_FILE_NAME = 'lux_job.log';

const FLUSH_MS = 50;
const FLUSH_BYTES = 64 * 1024;

/**
 * Console output in batches: stdout to a pipe or journald is a blocking
 * syscall per write on Linux, and at thousands of jobs a second one write per
 * line (or even per event-loop turn) was a fifth of the supervisor's time.
 * Lines wait at most FLUSH_MS, or until 64 KiB are waiting.
 */
class BatchedConsole extends TransportStream {
  private buffer: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  override log(info: winston.Logform.TransformableInfo, next: () => void): void {
    const line = String(info[Symbol.for('message')]);
    this.buffer.push(line);
    this.bytes += line.length + 1;
    if (this.bytes >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    next();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    const text = `${this.buffer.join('\n')}\n`;
    this.buffer = [];
    this.bytes = 0;
    process.stdout.write(text);
  }

  override close(): void {
    this.flush();
  }
}

/** "[send_email #12] " when the entry names a job. */
function jobTag(info: winston.Logform.TransformableInfo): string {
  const job = info.job as string | undefined;
  const id = info.jobId as number | undefined;
  if (job && id !== undefined) return `[${job} #${id}] `;
  if (id !== undefined) return `[#${id}] `;
  return '';
}

/** Fields a text line shows in its own place rather than in the trailing JSON. */
const PLACED = new Set(['timestamp', 'level', 'message', 'job', 'jobId']);

const textLine = winston.format.printf((info) => {
  // for…in sees string keys only, so winston's Symbol fields never reach the JSON; one pass, no copies.
  let extra: Record<string, unknown> | undefined;
  for (const key in info) {
    if (PLACED.has(key)) continue;
    extra ??= {};
    extra[key] = info[key];
  }
  const meta = extra ? ` ${JSON.stringify(extra)}` : '';
  return `${info.timestamp} ${info.level.padEnd(5)} ${jobTag(info)}${info.message}${meta}`;
});

/**
 * The supervisor's log: `<dir>/lux_job.log`, rotated at 10 MiB keeping 5 files,
 * and the console. `json` writes one JSON object per line for log shippers.
 */
export function createLogger(options: LoggerOptions): Logger {
  fs.mkdirSync(options.dir, { recursive: true });
  // winston formats every entry before its transports drop those below their level: a
  // debug line per job cost a tenth of the supervisor's allocations. Drop them first.
  let logger: Logger | undefined;
  const enabled = winston.format((info) => (logger?.isLevelEnabled(info.level) === false ? false : info))();
  const format =
    options.format === 'json'
      ? winston.format.combine(enabled, winston.format.timestamp(), winston.format.json())
      : winston.format.combine(enabled, winston.format.timestamp(), textLine);
  const transports: winston.transport[] = [
    new winston.transports.File({
      filename: path.join(options.dir, LOG_FILE_NAME),
      maxsize: 10 * 1024 * 1024,
      maxFiles: 5,
      tailable: true,
    }),
  ];
  if (options.console !== false) transports.push(new BatchedConsole());
  logger = winston.createLogger({ level: options.level, format, transports });
  return logger;
}

/** A logger that drops everything (the API's default when none is given). */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}

/** Waits for the file transport to write what it holds; call before process.exit. */
export function flushLogger(logger: Logger): Promise<void> {
  // Late lines (a dead worker's last output) must not become a "write after end" crash at exit.
  logger.on('error', () => undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    logger.on('finish', () => {
      clearTimeout(timer);
      for (const transport of logger.transports) if (transport instanceof BatchedConsole) transport.flush();
      setTimeout(resolve, 50);
    });
    logger.end();
    logger.silent = true;
  });
}
