// A job that keeps a core busy drops to nice 19 and SCHED_IDLE until it ends; jobs that wait are left alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { procStat } from '../dist/cpu-hogs.js';
import { client, eachDatabase, waitFor, waitForDone } from './helpers/databases';
import { isAlive, ready, startSupervisor } from './helpers/supervisor';

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

/** nice and scheduling policy of a process, from /proc. */
function scheduling(pid: number): { nice: number; policy: number } | undefined {
  const stat = procStat(pid);
  return stat && { nice: stat.nice, policy: stat.policy };
}

const hasChrt = (() => {
  try {
    execFileSync('chrt', ['--version']);
    return true;
  } catch {
    return false;
  }
})();

async function burnPid(dir: string): Promise<number> {
  const file = path.join(dir, 'burn.pid');
  return waitFor(
    async () => (fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : undefined),
    10_000,
    'burn.pid',
  );
}

eachDatabase(
  t,
  'a CPU hog is demoted until it ends',
  async (t, db) => {
    const lux = client(t, db);
    const sup = startSupervisor(t, db, { LUXJOB_LOG_LEVEL: 'debug' });
    await ready(sup);
    const burn = await lux.add('burn', { ms: 2000 });
    const sleeper = await lux.add('sleep', { ms: 2000 });
    const pid = await burnPid(db.dir);
    const demoted = await waitFor(
      async () => {
        const now = scheduling(pid);
        return now && now.nice === 19 ? now : undefined;
      },
      1500,
      'the burning worker at nice 19',
    );
    t.equal(demoted.nice, 19, 'the worker burning a core is at nice 19');
    if (hasChrt) {
      const idle = await waitFor(
        async () => (scheduling(pid)?.policy === SCHED_IDLE ? true : undefined),
        1000,
        'SCHED_IDLE',
      );
      t.ok(idle, 'and under SCHED_IDLE');
    } else t.comment('no chrt here: nice 19 only');
    const others = sup.workerPids().filter((p) => p !== pid);
    t.ok(others.length > 0);
    t.same(
      others.map((p) => scheduling(p)?.nice),
      others.map(() => 5),
      'the worker that only sleeps keeps nice 5',
    );
    await waitForDone(lux, burn.id, 15_000, 'burn');
    await waitForDone(lux, sleeper.id, 15_000, 'sleep');
    // Back to nice 5 and SCHED_OTHER before its next job, or replaced where that is not allowed.
    const after = await waitFor(
      async () => {
        if (!isAlive(pid)) return 'replaced';
        const now = scheduling(pid);
        return now && now.nice === 5 && now.policy === SCHED_OTHER ? 'restored' : undefined;
      },
      5000,
      'the worker restored or replaced',
    );
    t.pass(`the demoted worker was ${after}`);
    t.match(
      await sup.waitForLine(/using most of a core: lowest CPU priority until this job ends/),
      /\[burn #/,
    );
    sup.child.kill('SIGTERM');
    t.equal(await sup.exited, 0);
  },
  { only: ['sqlite'] },
);

/**
 * A command prefix that starts the supervisor without the right to raise a
 * worker's priority again: as root, without CAP_SYS_NICE (`setpriv`); as
 * anyone else, with RLIMIT_NICE at 0 (`prlimit`). Both are util-linux, which
 * every mainstream distribution installs (Debian marks it essential).
 */
function supervisorThatCannotRestore(): string[] {
  return process.getuid?.() === 0 ? ['setpriv', '--bounding-set', '-sys_nice'] : ['prlimit', '--nice=0:0'];
}

eachDatabase(
  t,
  'a demoted worker that may not be restored is replaced',
  async (t, db) => {
    const wrapper = supervisorThatCannotRestore();
    try {
      execFileSync(wrapper[0]!, [...wrapper.slice(1), 'true']);
    } catch (err) {
      t.fail(`${wrapper[0]} (util-linux) is needed to run a supervisor that may not raise priority: ${err}`);
      return;
    }
    const lux = client(t, db);
    const sup = startSupervisor(t, db, { LUXJOB_RECYCLE_RSS_MB: '0' }, undefined, wrapper);
    await ready(sup);
    const burn = await lux.add('burn', { ms: 800 });
    const pid = await burnPid(db.dir);
    await waitForDone(lux, burn.id, 15_000, 'burn');
    await waitFor(async () => (isAlive(pid) ? undefined : true), 5000, 'the demoted worker to leave');
    t.notOk(isAlive(pid), 'the demoted worker left after its job');
    await waitFor(async () => (sup.workerPids().length === 2 ? true : undefined), 5000, 'two workers');
    t.same(
      sup.workerPids().map((p) => scheduling(p)),
      [
        { nice: 5, policy: SCHED_OTHER },
        { nice: 5, policy: SCHED_OTHER },
      ],
      'a fresh worker took its place at nice 5',
    );
    const next = await lux.add('noop', {});
    await waitForDone(lux, next.id, 15_000, 'a job after the replacement');
    sup.child.kill('SIGTERM');
    t.equal(await sup.exited, 0);
  },
  { only: ['sqlite'] },
);

eachDatabase(
  t,
  'LUXJOB_CPU_HOG_AFTER=0 leaves hogs alone',
  async (t, db) => {
    const lux = client(t, db);
    const sup = startSupervisor(t, db, { LUXJOB_CPU_HOG_AFTER: '0' });
    await ready(sup);
    const burn = await lux.add('burn', { ms: 1000 });
    const pid = await burnPid(db.dir);
    await new Promise((r) => setTimeout(r, 600));
    t.match(scheduling(pid), { nice: 5, policy: SCHED_OTHER }, 'still nice 5 after 600 ms of burning');
    await waitForDone(lux, burn.id, 15_000, 'burn');
    sup.child.kill('SIGTERM');
    t.equal(await sup.exited, 0);
  },
  { only: ['sqlite'] },
);
