/** Real supervisor processes (`node dist/supervisor.js`) for tests, with real signals. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import type { Test } from 'tap';
import { procStat } from '../../dist/cpu-hogs.js';
import { JOBS_FIXTURE, type TestDatabase } from './databases';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface SupervisorProcess {
  child: ChildProcess;
  pid: number;
  output: string[];
  /** Resolves with the first output line matching `pattern`. */
  waitForLine(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves with the exit code (or signal name) once the process has gone. */
  exited: Promise<number | string>;
  /** The worker pids, read from `ps` (children of this supervisor). */
  workerPids(): number[];
}

export function startSupervisor(
  t: Test,
  db: TestDatabase,
  env: Record<string, string> = {},
  jobs = JOBS_FIXTURE,
  /** A command that execs the supervisor, e.g. setpriv with fewer capabilities. */
  wrapper: string[] = [],
): SupervisorProcess {
  const command = [...wrapper, process.execPath, path.join(ROOT, 'dist', 'supervisor.js')];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    env: {
      ...process.env,
      LUXJOB_DATABASE_URL: db.url,
      LUXJOB_JOBS: jobs,
      LUXJOB_WORKERS: '2',
      LUXJOB_POLL_INTERVAL: '0.05',
      LUXJOB_LOG_DIR: path.join(db.dir, 'log'),
      LUXJOB_TEST_DIR: db.dir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      output.push(line);
      for (const listener of listeners) listener(line);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      // An unexpected exit is a failure to diagnose: show what the supervisor said.
      if (code !== 0 && signal !== 'SIGKILL') {
        console.error(
          `supervisor ${child.pid} exited with ${code ?? signal}; its last output:\n${output.slice(-40).join('\n')}`,
        );
      }
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    pid: child.pid!,
    output,
    exited,
    waitForLine(pattern, ms = 20_000) {
      const found = output.find((line) => pattern.test(line));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(
            new Error(
              `no line matching ${pattern} within ${ms} ms; output:\n${output.slice(-30).join('\n')}`,
            ),
          );
        }, ms);
        const listener = (line: string) => {
          if (!pattern.test(line)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(line);
        };
        listeners.add(listener);
        child.on('exit', () => {
          if (!listeners.has(listener)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          reject(
            new Error(
              `supervisor exited before a line matched ${pattern}; output:\n${output.slice(-30).join('\n')}`,
            ),
          );
        });
      });
    },
    workerPids() {
      return childPids(child.pid!).filter(isWorker);
    },
  };
}

/** Direct children of `pid`, from /proc. */
export function childPids(pid: number): number[] {
  const fs = require('node:fs') as typeof import('node:fs');
  // procStat is undefined for a process that went away while we looked.
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && procStat(Number(entry))?.ppid === pid)
    .map(Number);
}

/** A LuxJob worker process (not, say, tsx's esbuild helper). */
export function isWorker(pid: number): boolean {
  const fs = require('node:fs') as typeof import('node:fs');
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker.js');
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for the supervisor to be ready to run jobs. */
export async function ready(sup: SupervisorProcess): Promise<void> {
  await sup.waitForLine(/supervisor \S+ running/);
}
