/**
 * CPU per job, split by process: `npx tsx bench/cpu.ts [sqlite|mysql|pg] [jobs]`.
 * Adds `jobs` noops (default 5,000), starts a supervisor with 8 workers, and
 * reads utime + stime from /proc for the supervisor, its workers and the
 * database server's processes (postgres / mariadbd, same machine) from its
 * `running` line to the last job done. One run; prints one JSON line.
 * MariaDB and PostgreSQL URLs as for `npm run bench`.
 */
import { execSync } from 'node:child_process';
import { procStat } from '../dist/cpu-hogs.js';
import { createLuxJob } from '../dist/index.js';
import { createDatabase, type Kind } from '../test/helpers/databases';
import { JOBS_FILE, mapBenchUrls, startSupervisor, waitForDone, workerPids } from './lib';

const cpuMs = (pid: number) => procStat(pid)?.cpuMs ?? 0;

function serverCpuMs(kind: Kind): number {
  if (kind === 'sqlite') return 0;
  const name = kind === 'pg' ? 'postgres' : 'mariadbd';
  const pids = execSync(`pgrep -x ${name} || true`).toString().split('\n').filter(Boolean).map(Number);
  return pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
}

async function main(): Promise<void> {
  mapBenchUrls();
  const kind = (process.argv[2] ?? 'sqlite') as Kind;
  const jobs = Number(process.argv[3] ?? 5000);
  const db = await createDatabase(kind, 'bench_cpu');
  const lux = createLuxJob({ database: db.url, jobs: JOBS_FILE });
  try {
    await lux.migrate();
    await lux.addMany(Array.from({ length: jobs }, () => ({ name: 'noop' })));
    const supervisor = startSupervisor({ url: db.url, dir: db.dir, workers: 8, poll: 0.05 });
    try {
      const runningAt = await supervisor.running;
      const workers = workerPids(supervisor.pid);
      const before = {
        supervisor: cpuMs(supervisor.pid),
        workers: workers.reduce((sum, pid) => sum + cpuMs(pid), 0),
        database: serverCpuMs(kind),
      };
      await waitForDone(lux.db, 0, jobs);
      const wallMs = Date.now() - runningAt;
      const perJob = (ms: number) => Number((ms / jobs).toFixed(3));
      console.log(
        JSON.stringify({
          db: kind,
          jobs,
          jobsPerSecond: Math.round((jobs / wallMs) * 1000),
          cpuMsPerJob: {
            supervisor: perJob(cpuMs(supervisor.pid) - before.supervisor),
            workers: perJob(
              workerPids(supervisor.pid).reduce((sum, pid) => sum + cpuMs(pid), 0) - before.workers,
            ),
            database: perJob(serverCpuMs(kind) - before.database),
          },
        }),
      );
      await supervisor.stop();
    } finally {
      supervisor.kill();
    }
  } finally {
    await lux.close();
    await db.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
