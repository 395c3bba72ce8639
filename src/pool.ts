/**
 * The worker processes: fork, handshake, run one job each, kill on timeout,
 * replace whatever dies. Each `run()` resolves with how the job ended, whatever
 * happened to the process running it.
 */
import { type ChildProcess, fork } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { CpuHogs, demote, HOG_NICE, restore } from './cpu-hogs';
import { CatalogueLoadError } from './errors';
import { type FromWorker, isFromWorker, type LogLevel, type ToWorker } from './ipc';
import type { AddOptions, AddResult, ErrorData } from './payload';
import type { Outcome } from './transitions';

export interface PoolOptions {
  size: number;
  catalogueFile: string;
  recycleAfterJobs: number;
  recycleRssMb: number;
  /** Nice value added to each worker (0 leaves it as the supervisor's). */
  workerNice: number;
  /** Ms a job runs before its CPU use is checked; a hog is demoted until it ends (0 = never). */
  cpuHogAfterMs: number;
  /** Extra environment for the workers (the supervisor's own is inherited). */
  env?: NodeJS.ProcessEnv;
}

export interface PoolHooks {
  log(level: LogLevel, message: string, meta?: Record<string, unknown>): void;
  /** A handler called ctx.add(); the supervisor performs it. */
  enqueue(name: string, opts: unknown, options: AddOptions): Promise<AddResult>;
  /** A worker became free: the supervisor may claim more. */
  idle(): void;
}

export interface RunRequest {
  jobId: number;
  name: string;
  opts: string;
  attempt: number;
  timeoutMs: number;
}

type SlotState = 'starting' | 'idle' | 'busy' | 'restoring' | 'retiring';

interface Slot {
  child: ChildProcess;
  pid: number;
  state: SlotState;
  jobsRun: number;
  /** Its nice value between jobs. */
  nice: number;
  /** Set once its job was found hogging a CPU: the demotion, resolved when applied. */
  demoted?: Promise<{ idle: boolean } | undefined>;
  job?: {
    request: RunRequest;
    startedAt: number;
    timer: NodeJS.Timeout;
    timedOut: boolean;
    putBack: boolean;
    settle: (outcome: Outcome) => void;
  };
}

const WORKER_SCRIPT = path.join(__dirname, 'worker.js');
/** Lines per second a worker may print before the rest of that second is dropped. */
const OUTPUT_LINES_PER_SECOND = 200;
const OUTPUT_LINE_MAX = 2000;

export class WorkerPool {
  private readonly slots = new Set<Slot>();
  private stopping = false;
  private replaceFailures = 0;
  private readonly hogs: CpuHogs;
  private hogTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: PoolOptions,
    private readonly hooks: PoolHooks,
  ) {
    this.hogs = new CpuHogs(options.cpuHogAfterMs);
  }

  /** Forks every worker and waits for all to say ready; rejects with the loading error of the first that cannot. */
  async start(): Promise<void> {
    const starts = Array.from({ length: this.options.size }, () => this.spawn());
    const results = await Promise.allSettled(starts);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.killAll();
      throw failed.reason;
    }
    if (this.hogs.enabled) {
      this.hogTimer = setInterval(() => this.demoteHogs(), 25);
      this.hogTimer.unref();
    }
  }

  idleCount(): number {
    let n = 0;
    for (const slot of this.slots) if (slot.state === 'idle') n++;
    return n;
  }

  busyCount(): number {
    let n = 0;
    for (const slot of this.slots) if (slot.job) n++;
    return n;
  }

  pids(): number[] {
    return [...this.slots].map((s) => s.pid);
  }

  /** Runs one job on an idle worker. The caller checks idleCount() first. */
  run(request: RunRequest): Promise<Outcome> {
    let slot: Slot | undefined;
    for (const s of this.slots) {
      if (s.state === 'idle') {
        slot = s;
        break;
      }
    }
    if (!slot) return Promise.reject(new Error('no idle worker'));
    return new Promise<Outcome>((resolve) => {
      slot.state = 'busy';
      slot.job = {
        request,
        startedAt: Date.now(),
        timedOut: false,
        putBack: false,
        // Hard timeout: only killing the process stops a handler stuck in synchronous code.
        timer: setTimeout(() => this.killForTimeout(slot), request.timeoutMs),
        settle: resolve,
      };
      this.send(slot, {
        type: 'run',
        jobId: request.jobId,
        name: request.name,
        opts: request.opts,
        attempt: request.attempt,
      });
    });
  }

  /** Raises every running handler's AbortSignal (graceful shutdown). */
  abortAll(): void {
    this.stopping = true;
    for (const slot of this.slots) if (slot.job) this.send(slot, { type: 'abort' });
  }

  /** Resolves once no job is running, or after `ms`. */
  async waitIdle(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.busyCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return this.busyCount() === 0;
  }

  /**
   * Kills every worker. Jobs still running end as `put-back`: they were
   * interrupted by shutdown, not failed by their own doing.
   */
  async killAll(): Promise<void> {
    this.stopping = true;
    clearInterval(this.hogTimer);
    const exits = [...this.slots].map(
      (slot) =>
        new Promise<void>((resolve) => {
          if (slot.child.exitCode !== null || slot.child.signalCode !== null) return resolve();
          slot.child.once('exit', () => resolve());
          if (slot.job) slot.job.putBack = true;
          slot.child.kill('SIGKILL');
        }),
    );
    await Promise.all(exits);
  }

  /** Lets idle workers leave on their own and kills any that linger. */
  async close(): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) if (!slot.job) this.send(slot, { type: 'exit' });
    const deadline = Date.now() + 2000;
    while (this.slots.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.killAll();
  }

  private spawn(): Promise<void> {
    const child = fork(WORKER_SCRIPT, [], {
      env: {
        ...process.env,
        ...this.options.env,
        LUXJOB_JOBS: path.resolve(this.options.catalogueFile),
        LUXJOB_RECYCLE_RSS_MB: String(this.options.recycleRssMb),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const slot: Slot = { child, pid: child.pid ?? -1, state: 'starting', jobsRun: 0, nice: os.getPriority() };
    // Jobs run below their supervisor's CPU priority: one that spins cannot delay the
    // heartbeats that keep its lease, nor the timer that kills it.
    if (this.options.workerNice > 0 && child.pid) {
      try {
        const nice = Math.min(19, os.getPriority() + this.options.workerNice);
        os.setPriority(child.pid, nice);
        slot.nice = nice;
      } catch (err) {
        this.hooks.log('warn', `cannot lower worker ${child.pid}'s priority: ${(err as Error).message}`);
      }
    }
    this.slots.add(slot);
    this.forwardOutput(slot);
    return new Promise<void>((resolve, reject) => {
      let loadError: ErrorData | undefined;
      child.on('message', (msg: unknown) => {
        if (!isFromWorker(msg)) return;
        if (msg.type === 'ready') {
          slot.state = 'idle';
          this.replaceFailures = 0;
          resolve();
          this.hooks.idle();
        } else if (msg.type === 'load-failed') {
          loadError = msg.error;
        } else {
          this.onMessage(slot, msg);
        }
      });
      child.on('error', (err) => {
        this.hooks.log('error', `worker ${slot.pid}: ${err.message}`);
      });
      child.on('exit', (code, signal) => {
        const wasStarting = slot.state === 'starting';
        this.onExit(slot, code, signal);
        if (wasStarting) {
          reject(
            new CatalogueLoadError(
              loadError
                ? loadError.message
                : `a worker exited (${signal ?? `code ${code}`}) before it was ready: see the log above for its output`,
            ),
          );
        }
      });
    });
  }

  private onMessage(slot: Slot, msg: FromWorker): void {
    switch (msg.type) {
      case 'done':
        this.settle(slot, msg.jobId, { type: 'success', response: msg.response }, msg.rss);
        break;
      case 'failed':
        this.settle(
          slot,
          msg.jobId,
          { type: 'failure', kind: msg.kind, error: msg.error },
          msg.rss,
          msg.fatal === true,
        );
        break;
      case 'log':
        this.hooks.log(msg.level, msg.message, {
          ...msg.meta,
          jobId: msg.jobId,
          job: slot.job?.request.name,
        });
        break;
      case 'enqueue':
        this.hooks.enqueue(msg.name, msg.opts, msg.options).then(
          (result) => this.send(slot, { type: 'enqueued', requestId: msg.requestId, result }),
          (err: Error) =>
            this.send(slot, {
              type: 'enqueued',
              requestId: msg.requestId,
              error: { name: err.name, message: err.message },
            }),
        );
        break;
    }
  }

  private settle(slot: Slot, jobId: number, outcome: Outcome, rss: number, dying = false): void {
    const job = slot.job;
    if (!job || job.request.jobId !== jobId) return;
    clearTimeout(job.timer);
    slot.job = undefined;
    slot.jobsRun++;
    job.settle(outcome);
    this.hogs.release(slot.pid);
    if (dying) {
      // It is exiting on its own; its exit forks the replacement.
      slot.state = 'retiring';
      this.replace();
    } else if (this.shouldRecycle(slot, rss)) {
      slot.state = 'retiring';
      this.send(slot, { type: 'exit' });
      this.replace();
    } else if (slot.demoted && slot.state === 'busy') {
      this.restorePriority(slot, slot.demoted);
    } else if (slot.state === 'busy') {
      slot.state = 'idle';
      this.hooks.idle();
    }
  }

  /** Drops workers that have used most of a core for a while to the lowest priority until their job ends. */
  private demoteHogs(): void {
    const now = Date.now();
    const busy: Array<{ pid: number; runningMs: number }> = [];
    const byPid = new Map<number, Slot>();
    for (const slot of this.slots) {
      if (!slot.job || slot.demoted || slot.nice >= HOG_NICE) continue;
      busy.push({ pid: slot.pid, runningMs: now - slot.job.startedAt });
      byPid.set(slot.pid, slot);
    }
    if (busy.length === 0) return;
    for (const pid of this.hogs.check(busy, now)) {
      const slot = byPid.get(pid)!;
      const job = slot.job!.request;
      // Kept as a promise: the job may end before the change is made, and its end must undo it.
      slot.demoted = demote(pid);
      void slot.demoted.then((done) => {
        if (!done) return;
        this.hooks.log(
          'debug',
          `worker ${pid} is using most of a core: lowest CPU priority until this job ends`,
          {
            jobId: job.jobId,
            job: job.name,
          },
        );
      });
    }
  }

  /** A demoted worker gets its priority back before its next job; one not allowed to is replaced. */
  private restorePriority(slot: Slot, demoted: NonNullable<Slot['demoted']>): void {
    slot.state = 'restoring';
    // Not on a worker that has gone meanwhile: its pid may belong to another process by now.
    const restored = demoted.then((done) =>
      !this.slots.has(slot) ? false : done ? restore(slot.pid, slot.nice, done.idle) : true,
    );
    void restored.then((ok) => {
      if (!this.slots.has(slot) || slot.state !== 'restoring') return;
      slot.demoted = undefined;
      if (ok && !this.stopping) {
        slot.state = 'idle';
        this.hooks.idle();
        return;
      }
      slot.state = 'retiring';
      this.send(slot, { type: 'exit' });
      this.replace();
    });
  }

  private shouldRecycle(slot: Slot, rss: number): boolean {
    if (this.stopping) return false;
    const { recycleAfterJobs, recycleRssMb } = this.options;
    if (recycleAfterJobs > 0 && slot.jobsRun >= recycleAfterJobs) return true;
    return recycleRssMb > 0 && rss > recycleRssMb * 1024 * 1024;
  }

  private killForTimeout(slot: Slot): void {
    if (!slot.job) return;
    slot.job.timedOut = true;
    slot.child.kill('SIGKILL');
  }

  private onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    this.slots.delete(slot);
    this.hogs.release(slot.pid);
    const job = slot.job;
    if (job) {
      clearTimeout(job.timer);
      slot.job = undefined;
      const elapsed = Date.now() - job.startedAt;
      const seconds = job.request.timeoutMs / 1000;
      if (job.putBack) {
        job.settle({ type: 'put-back' });
      } else if (job.timedOut) {
        job.settle({
          type: 'failure',
          kind: 'timeout',
          error: {
            name: 'TimeoutError',
            message: `timed out after ${seconds}s: worker ${slot.pid} killed with SIGKILL ${elapsed} ms after the job started`,
          },
        });
      } else {
        job.settle({
          type: 'failure',
          kind: 'crash',
          error: {
            name: 'WorkerCrashError',
            message: `worker ${slot.pid} exited with ${signal ? `signal ${signal}` : `code ${code}`} while running the job`,
          },
        });
      }
    }
    if (!this.stopping && slot.state !== 'starting' && slot.state !== 'retiring') this.replace();
  }

  /** Forks a replacement; a catalogue that stopped loading is retried with backoff, never in a tight loop. */
  private replace(): void {
    if (this.stopping) return;
    this.spawn().catch((err: Error) => {
      this.replaceFailures++;
      const wait = Math.min(30_000, 500 * 2 ** Math.min(this.replaceFailures, 6));
      this.hooks.log(
        'error',
        `could not start a replacement worker: ${err.message}; trying again in ${wait} ms`,
      );
      setTimeout(() => this.replace(), wait).unref();
    });
  }

  private send(slot: Slot, message: ToWorker): void {
    if (slot.child.connected) slot.child.send(message, (err) => err && undefined);
  }

  /** Job output goes to the log, line by line, bounded so a flooding job cannot swamp it. */
  private forwardOutput(slot: Slot): void {
    let windowStart = 0;
    let lines = 0;
    let dropped = 0;
    let reportTimer: NodeJS.Timeout | undefined;
    const reportDropped = () => {
      reportTimer = undefined;
      if (dropped === 0) return;
      this.hooks.log(
        'warn',
        `worker ${slot.pid}: ${dropped} output lines dropped (over ${OUTPUT_LINES_PER_SECOND}/s)`,
      );
      dropped = 0;
    };
    const forward = (stream: NodeJS.ReadableStream | null, level: LogLevel) => {
      if (!stream) return;
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        const now = Date.now();
        if (now - windowStart >= 1000) {
          reportDropped();
          windowStart = now;
          lines = 0;
        }
        if (++lines > OUTPUT_LINES_PER_SECOND) {
          dropped++;
          // Said when the window closes, even if the flood stops before the next line.
          if (!reportTimer) reportTimer = setTimeout(reportDropped, windowStart + 1000 - now);
          return;
        }
        const text =
          line.length > OUTPUT_LINE_MAX ? `${line.slice(0, OUTPUT_LINE_MAX)}… [${line.length} chars]` : line;
        this.hooks.log(level, text, {
          worker: slot.pid,
          ...(slot.job ? { jobId: slot.job.request.jobId, job: slot.job.request.name } : {}),
        });
      });
    };
    forward(slot.child.stdout, 'info');
    forward(slot.child.stderr, 'warn');
  }
}
