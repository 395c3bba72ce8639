/**
 * The forked worker process: loads the catalogue once, says ready, then runs
 * one job at a time for its supervisor. It never touches the database.
 */
import { Worker as Thread } from 'node:worker_threads';
import { type JobContext, type JobLogger, loadCatalogue, type ResolvedJob } from './catalogue';
import { type FromWorker, isToWorker, type LogLevel, type ToWorker } from './ipc';
import { type AddResult, encodeResult, errorToData } from './payload';

let current: { jobId: number; controller: AbortController } | undefined;
let exitAfterJob = false;
let nextRequestId = 1;
const measureRss = Number(process.env.LUXJOB_RECYCLE_RSS_MB ?? 0) > 0;
const pendingAdds = new Map<number, { resolve: (r: AddResult) => void; reject: (e: Error) => void }>();

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send?.(message, undefined, {}, () => resolve());
  });
}

/**
 * A job spinning in `while (true) {}` blocks this thread, so it would never
 * see its supervisor vanish. A tiny thread watches the parent pid instead and
 * kills this process when the supervisor is gone: no orphans, even after a SIGKILL.
 */
function startOrphanWatchdog(): void {
  const source = `
    const { workerData } = require('node:worker_threads');
    setInterval(() => {
      if (process.ppid !== workerData.ppid) process.kill(workerData.pid, 'SIGKILL');
    }, 250);
  `;
  new Thread(source, { eval: true, workerData: { ppid: process.ppid, pid: process.pid } }).unref();
}

function jobLogger(jobId: number): JobLogger {
  const log = (level: LogLevel) => (message: string, meta?: Record<string, unknown>) => {
    void send({ type: 'log', jobId, level, message: String(message), ...(meta ? { meta } : {}) });
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

function enqueueThroughSupervisor(name: string, opts: unknown, options: object = {}): Promise<AddResult> {
  const requestId = nextRequestId++;
  return new Promise((resolve, reject) => {
    pendingAdds.set(requestId, { resolve, reject });
    void send({ type: 'enqueue', requestId, name, opts, options });
  });
}

async function runJob(
  jobs: Map<string, ResolvedJob>,
  msg: Extract<ToWorker, { type: 'run' }>,
): Promise<void> {
  // Reading RSS costs a /proc read; only the RSS recycling limit needs it.
  const rss = () => (measureRss ? process.memoryUsage.rss() : 0);
  const job = jobs.get(msg.name);
  if (!job) {
    const known = [...jobs.keys()].join(', ');
    return send({
      type: 'failed',
      jobId: msg.jobId,
      kind: 'unknown-job',
      error: {
        name: 'UnknownJobError',
        message: `unknown job "${msg.name}": this catalogue defines ${known}`,
      },
      rss: rss(),
    });
  }
  let opts: unknown;
  try {
    opts = JSON.parse(msg.opts);
  } catch (err) {
    return send({
      type: 'failed',
      jobId: msg.jobId,
      kind: 'bad-opts',
      error: {
        name: 'InvalidPayloadError',
        message: `the row's opts are not valid JSON (${(err as Error).message}): ${msg.opts.slice(0, 200)}`,
      },
      rss: rss(),
    });
  }
  const controller = new AbortController();
  current = { jobId: msg.jobId, controller };
  const ctx: JobContext = {
    jobId: msg.jobId,
    name: msg.name,
    attempt: msg.attempt,
    logger: jobLogger(msg.jobId),
    signal: controller.signal,
    add: enqueueThroughSupervisor,
  };
  try {
    const result = await job.run(opts, ctx);
    let response: string;
    try {
      response = encodeResult(result);
    } catch (err) {
      response = `[unserialisable result: ${(err as Error).message}]`;
    }
    await send({ type: 'done', jobId: msg.jobId, response, rss: rss() });
  } catch (err) {
    await send({ type: 'failed', jobId: msg.jobId, kind: 'error', error: errorToData(err), rss: rss() });
  } finally {
    current = undefined;
  }
  if (exitAfterJob) process.exit(0);
}

async function main(): Promise<void> {
  startOrphanWatchdog();
  // Whatever escapes a handler (a stray rejection, a throw in a timer) fails the
  // running job with that error; the process then leaves, as its state is unknown.
  const fatal = async (err: unknown) => {
    if (current) {
      await send({
        type: 'failed',
        jobId: current.jobId,
        kind: 'error',
        error: errorToData(err),
        rss: 0,
        fatal: true,
      });
    }
    process.exit(70);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  process.on('disconnect', () => process.exit(0));
  // The supervisor owns shutdown; a Ctrl-C reaching the whole process group must not kill jobs early.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);

  const file = process.env.LUXJOB_JOBS;
  let jobs: Map<string, ResolvedJob>;
  try {
    if (!file) throw new Error('LUXJOB_JOBS is not set: the supervisor passes the catalogue path');
    jobs = await loadCatalogue(file);
  } catch (err) {
    await send({ type: 'load-failed', error: errorToData(err) });
    process.exit(78);
  }

  process.on('message', (msg: unknown) => {
    if (!isToWorker(msg)) return;
    switch (msg.type) {
      case 'run':
        void runJob(jobs, msg);
        break;
      case 'abort':
        current?.controller.abort(new Error('the supervisor is shutting down'));
        break;
      case 'enqueued': {
        const pending = pendingAdds.get(msg.requestId);
        pendingAdds.delete(msg.requestId);
        if (!pending) break;
        if (msg.result) pending.resolve(msg.result);
        else
          pending.reject(
            Object.assign(new Error(msg.error?.message ?? 'enqueue failed'), { name: msg.error?.name }),
          );
        break;
      }
      case 'exit':
        if (!current) process.exit(0);
        exitAfterJob = true;
        break;
    }
  });
  await send({ type: 'ready', pid: process.pid, jobs: [...jobs.keys()] });
}

void main();
