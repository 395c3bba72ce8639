/**
 * Jobs that burn CPU for long drop to the lowest CPU priority, so on a busy
 * host they take what short jobs, the supervisor and the database leave
 * instead of an equal share (a `while (true) {}` owns a core until its
 * timeout). Jobs that wait on I/O are never touched: only a worker found using
 * most of a core, after running one job for a while, is demoted.
 *
 * Demoted means nice 19 and, where util-linux's `chrt` is installed, the
 * SCHED_IDLE policy: nice alone still lets the hog keep its core while short
 * jobs wake up on the other one; the scheduler treats a core running only
 * SCHED_IDLE work as free. Node has no call for scheduling policies.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ). */
const TICK_MS = 10;
/** The shortest span CPU use is measured over: one 10 ms tick in it is not yet half a core. */
const WINDOW_MS = 25;
/** A job is first sampled this long (at most) before it may be judged, so old CPU use does not count. */
const MAX_LEAD_MS = 1000;
/** Using at least this share of a core over the window makes a job a hog. */
const HOG_SHARE = 0.5;
export const HOG_NICE = 19;

export interface ProcStat {
  ppid: number;
  /** utime + stime in ms. */
  cpuMs: number;
  nice: number;
  /** Scheduling policy: 0 SCHED_OTHER, 5 SCHED_IDLE. */
  policy: number;
}

/** A process's /proc/<pid>/stat, or undefined when /proc cannot tell (not Linux, or gone). */
export function procStat(pid: number): ProcStat | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its ')' are fixed (field 3 is index 0).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS,
      nice: Number(fields[16]),
      policy: Number(fields[38]),
    };
  } catch {
    return undefined;
  }
}

interface Watch {
  sampledAt: number;
  cpuMs: number;
  demoted: boolean;
}

export class CpuHogs {
  private readonly watches = new Map<number, Watch>();

  /** `afterMs`: a job's running time before its CPU use is looked at; 0 turns demotion off. */
  constructor(private readonly afterMs: number) {}

  get enabled(): boolean {
    return this.afterMs > 0;
  }

  /**
   * Looks at the workers running a job for at least half of `afterMs` (at most
   * a second less; short jobs are never read), and decides once a job has run
   * `afterMs`: every millisecond a spinning job keeps its full share is taken
   * from the others. Returns the pids to demote now. Call every 25 ms or so.
   */
  check(busy: Array<{ pid: number; runningMs: number }>, now = Date.now()): number[] {
    const demote: number[] = [];
    const sampleFrom = this.afterMs - Math.min(this.afterMs / 2, MAX_LEAD_MS);
    for (const { pid, runningMs } of busy) {
      if (runningMs < sampleFrom) continue;
      const watch = this.watches.get(pid);
      if (watch?.demoted) continue;
      if (watch && (runningMs < this.afterMs || now - watch.sampledAt < WINDOW_MS)) continue;
      const cpuMs = procStat(pid)?.cpuMs;
      if (cpuMs === undefined) continue;
      if (!watch) {
        this.watches.set(pid, { sampledAt: now, cpuMs, demoted: false });
        continue;
      }
      if ((cpuMs - watch.cpuMs) / (now - watch.sampledAt) >= HOG_SHARE) {
        watch.demoted = true;
        demote.push(pid);
      } else {
        // Mostly waiting so far; measure the next window afresh.
        watch.sampledAt = now;
        watch.cpuMs = cpuMs;
      }
    }
    return demote;
  }

  /** The worker's job ended, or the worker died. */
  release(pid: number): void {
    this.watches.delete(pid);
  }
}

/** Sets a process's nice value; false when not allowed (raising priority needs CAP_SYS_NICE or RLIMIT_NICE). */
export function trySetNice(pid: number, nice: number): boolean {
  try {
    os.setPriority(pid, nice);
    return true;
  } catch {
    return false;
  }
}

type ChrtResult = 'ok' | 'failed' | 'missing';

function chrt(policy: '--idle' | '--other', pid: number): Promise<ChrtResult> {
  return new Promise((resolve) =>
    execFile('chrt', [policy, '--all-tasks', '--pid', '0', String(pid)], (err) =>
      resolve(!err ? 'ok' : (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'failed'),
    ),
  );
}

/**
 * Nice 19, then SCHED_IDLE when `chrt` is installed; undefined when not even
 * the nice value changed. `idle` is set whenever chrt ran, even if it failed
 * part-way (some threads may have changed), so the restore always undoes it.
 */
export async function demote(pid: number): Promise<{ idle: boolean } | undefined> {
  if (!trySetNice(pid, HOG_NICE)) return undefined;
  return { idle: (await chrt('--idle', pid)) !== 'missing' };
}

/**
 * Back to SCHED_OTHER and the worker's own nice value. Unprivileged processes
 * may only do so within RLIMIT_NICE (systemd's `LimitNICE=`); false when not
 * allowed, and the worker should not run another job.
 */
export async function restore(pid: number, nice: number, idle: boolean): Promise<boolean> {
  if (idle && (await chrt('--other', pid)) !== 'ok') return false;
  return trySetNice(pid, nice);
}
