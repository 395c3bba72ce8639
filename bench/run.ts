/**
 * LuxJob's benchmark: `npm run bench [-- --smoke] [--runs N] [--only a,b] [--db sqlite,mysql,pg]`.
 * Every scenario runs on a fresh database against real supervisor processes
 * (`node dist/supervisor.js`); see bench/README.md for what each figure means.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import type { JobRecord } from '../dist/index.js';
import { claimJobs } from '../dist/queries/claim.js';
import {
  addNoops,
  type BenchDatabase,
  countsSince,
  describeMachine,
  type Figure,
  formatNumber,
  type Kind,
  killAllSupervisors,
  killOnExit,
  lastFinishedAt,
  mapBenchUrls,
  maxId,
  median,
  type Options,
  parseOptions,
  percentDiff,
  percentile,
  progress,
  Report,
  rssMb,
  type Scenario,
  type Sizes,
  seedFinishedRows,
  serverVersion,
  settle,
  sizesFor,
  sleep,
  UsageError,
  waitFor,
  waitForDone,
  waitForQuiet,
  withDatabase,
  withSupervisor,
  workerPids,
} from './lib';

/** Measured values of one run, by figure id. */
type Values = Record<string, number>;

interface RunContext {
  kind: Kind;
  sizes: Sizes;
  /** 0-based index of this run. */
  run: number;
  /** A figure another scenario measured in the same run index on this database. */
  earlier(figureId: string): number | undefined;
}

interface ScenarioDefinition {
  figures(sizes: Sizes, kind: Kind): Figure[];
  run(ctx: RunContext): Promise<Values>;
}

const n = (value: number) => value.toLocaleString('en-US');
/** Lets a just-started supervisor finish its first (empty) claim and settle before we measure. */
const SETTLE_MS = 500;
/** The fast poll used wherever the poll interval is not what is being measured. */
const FAST_POLL = 0.05;

// ---------------------------------------------------------------- 1. throughput

interface Throughput {
  enqueue: number;
  fromRunning: number;
  fromSpawn: number;
}

/**
 * addMany `jobs` noops (timed), then a supervisor drains them; the rate runs
 * from its "running" line (and from the spawn) to the last finished_at.
 */
async function measureThroughput(bench: BenchDatabase, sizes: Sizes): Promise<Throughput> {
  const jobs = sizes.throughputJobs;
  const since = await maxId(bench.db);
  const started = performance.now();
  await bench.client.addMany(Array.from({ length: jobs }, () => ({ name: 'noop' })));
  const enqueueSeconds = (performance.now() - started) / 1000;
  const settings = { url: bench.url, dir: bench.dir, workers: sizes.workers, poll: FAST_POLL };
  return withSupervisor(settings, async (supervisor) => {
    const runningAt = await supervisor.running;
    await waitForDone(bench.db, since, jobs);
    const last = await lastFinishedAt(bench.db, since);
    return {
      enqueue: jobs / enqueueSeconds,
      fromRunning: jobs / ((last - runningAt) / 1000),
      fromSpawn: jobs / ((last - supervisor.spawnedAt) / 1000),
    };
  });
}

const throughput: ScenarioDefinition = {
  figures: (sizes) => [
    { id: 'enqueue', unit: 'jobs/s', label: `bulk enqueue, addMany of ${n(sizes.throughputJobs)}` },
    {
      id: 'throughput',
      unit: 'jobs/s',
      label: `throughput, ${n(sizes.throughputJobs)} noops, ${sizes.workers} workers, from 'running'`,
    },
    { id: 'throughput_from_spawn', unit: 'jobs/s', label: 'throughput, same runs, from process spawn' },
  ],
  run: ({ kind, sizes }) =>
    withDatabase(kind, 'throughput', async (bench) => {
      const t = await measureThroughput(bench, sizes);
      return { enqueue: t.enqueue, throughput: t.fromRunning, throughput_from_spawn: t.fromSpawn };
    }),
};

// ---------------------------------------------------------------- 2. latency

interface LatencyVariant {
  id: string;
  label: string;
  poll: number;
}

function latencyVariants(kind: Kind): LatencyVariant[] {
  const variants = [
    { id: 'poll_3s', label: 'poll 3 s', poll: 3 },
    { id: 'poll_50ms', label: 'poll 0.05 s', poll: FAST_POLL },
  ];
  // With LISTEN/NOTIFY wake-ups the 3 s poll should not matter; equal figures mean NOTIFY is not working.
  if (kind === 'pg') variants.push({ id: 'notify', label: 'notify (poll 3 s)', poll: 3 });
  return variants;
}

/** Adds `latency` jobs one at a time, `latencyGapMs` apart, to an idle supervisor; each reports its own start delay. */
async function measureLatency(kind: Kind, sizes: Sizes, poll: number): Promise<number[]> {
  return withDatabase(kind, 'latency', (bench) =>
    withSupervisor({ url: bench.url, dir: bench.dir, workers: sizes.workers, poll }, async (supervisor) => {
      await supervisor.running;
      await sleep(SETTLE_MS);
      const start = performance.now();
      for (let i = 0; i < sizes.latencyJobs; i++) {
        await sleep(start + i * sizes.latencyGapMs - performance.now());
        await bench.client.add('latency', { t: Date.now() });
      }
      await waitForDone(bench.db, 0, sizes.latencyJobs);
      const rows: Array<{ response: string }> = await bench.db
        .knex('lux_jobs')
        .where({ name: 'latency' })
        .select('response');
      const delays = rows.map((row) => Number(row.response));
      if (delays.some((ms) => !Number.isFinite(ms))) throw new Error('a latency job returned no number');
      return delays;
    }),
  );
}

const latency: ScenarioDefinition = {
  figures: (_sizes, kind) =>
    latencyVariants(kind).flatMap((variant) =>
      ['p50', 'p95', 'p99', 'max'].map((stat) => ({
        id: `latency_${variant.id}_${stat}`,
        unit: 'ms',
        label: `latency ${stat}, ${variant.label}`,
      })),
    ),
  run: async ({ kind, sizes }) => {
    const values: Values = {};
    for (const variant of latencyVariants(kind)) {
      const delays = await measureLatency(kind, sizes, variant.poll);
      values[`latency_${variant.id}_p50`] = percentile(delays, 50);
      values[`latency_${variant.id}_p95`] = percentile(delays, 95);
      values[`latency_${variant.id}_p99`] = percentile(delays, 99);
      values[`latency_${variant.id}_max`] = Math.max(...delays);
    }
    return values;
  },
};

// ---------------------------------------------------------------- 3. timeout precision

const KILL_MESSAGE = /killed with SIGKILL (\d+) ms after the job started/;
const TIMEOUT_MS = 1000;

async function noopsFinishedBetween(bench: BenchDatabase, from: number, to: number): Promise<number> {
  const row = await bench.db
    .knex('lux_jobs')
    .where({ name: 'noop', status_sid: 'd' })
    .whereBetween('finished_at', [new Date(from), new Date(to)])
    .count({ n: '*' })
    .first();
  return Number(row?.n ?? 0);
}

/** The measurement is only fair while noops are still waiting: a drained backlog would idle the workers. */
async function assertBacklogLeft(bench: BenchDatabase): Promise<void> {
  const counts = await countsSince(bench.db, 0);
  if (counts.s > 0) return;
  throw new Error('the noop backlog ran out while spins ran: raise spinBacklog in bench/lib.ts');
}

/**
 * Noops to queue behind the spins: at least `spinBacklog`, more when this
 * database's throughput (scenario 1, same run) says they would drain sooner.
 * A long-running supervisor outpaces scenario 1's 5,000 jobs, hence the margin.
 */
function spinBacklog(sizes: Sizes, throughput: number | undefined): number {
  const seconds = SETTLE_MS / 1000 + sizes.spins * 1.25 + 2;
  return Math.max(sizes.spinBacklog, Math.ceil((throughput ?? 0) * seconds * 3));
}

interface SpinRun {
  killDelays: number[];
  windowMs: number;
  noopRate: number;
}

/** A noop backlog on all workers, and `spins` spin jobs (priority -1) fed one at a time. */
async function runSpins(kind: Kind, sizes: Sizes, backlog: number): Promise<SpinRun> {
  return withDatabase(kind, 'timeout', async (bench) => {
    await addNoops(bench.client, backlog);
    const settings = { url: bench.url, dir: bench.dir, workers: sizes.workers, poll: FAST_POLL };
    return withSupervisor(settings, async (supervisor) => {
      await supervisor.running;
      await sleep(SETTLE_MS);
      const spins: JobRecord[] = [];
      for (let i = 0; i < sizes.spins; i++) {
        const { id } = await bench.client.add('spin', {}, { priority: -1 });
        const job = await waitFor(
          `spin job ${id} to end`,
          async () => {
            const row = await bench.client.get(id);
            return row && row.status !== 's' && row.status !== 'r' ? row : undefined;
          },
          30_000,
        );
        spins.push(job);
      }
      await assertBacklogLeft(bench);
      await supervisor.stop(); // writes every pending result
      const from = spins[0]!.startedAt!.getTime();
      const to = spins[spins.length - 1]!.finishedAt!.getTime();
      const killDelays = spins.map((job) => {
        const match = KILL_MESSAGE.exec(job.response ?? '');
        if (!match) throw new Error(`spin job ${job.id} did not time out: ${job.response}`);
        return Number(match[1]) - TIMEOUT_MS;
      });
      const noops = await noopsFinishedBetween(bench, from, to);
      return { killDelays, windowMs: to - from, noopRate: noops / ((to - from) / 1000) };
    });
  });
}

/**
 * A `for (;;) {}` outside LuxJob at the lowest CPU priority (nice 19, and
 * SCHED_IDLE where util-linux `chrt` is installed), which is what a demoted
 * spin job is: what the host alone charges the noops for a busy loop beside them.
 */
function outsideSpinner(): ChildProcess {
  const loop = [process.execPath, '-e', 'for (;;) {}'];
  const hasChrt = spawnSync('chrt', ['--version']).status === 0;
  const [command, ...args] = hasChrt
    ? ['chrt', '--idle', '0', 'nice', '-n', '19', ...loop]
    : ['nice', '-n', '19', ...loop];
  const child = spawn(command!, args, { stdio: 'ignore' });
  killOnExit(child);
  return child;
}

/**
 * The same backlog on one worker fewer and no spins, counted over a window as
 * long as the spin run's, from SETTLE_MS after "running"; with `spinner`, a
 * lowest-priority busy loop outside LuxJob runs meanwhile. Without a spinning
 * worker the backlog drains much faster; should it run out within the window,
 * the window ends with the last noop.
 */
async function runWithoutSpins(
  kind: Kind,
  sizes: Sizes,
  backlog: number,
  windowMs: number,
  spinner: boolean,
): Promise<number> {
  return withDatabase(kind, spinner ? 'timeout_outside' : 'timeout_base', async (bench) => {
    await addNoops(bench.client, backlog);
    const settings = { url: bench.url, dir: bench.dir, workers: sizes.workers - 1, poll: FAST_POLL };
    const from = await withSupervisor(settings, async (supervisor) => {
      await supervisor.running;
      await sleep(SETTLE_MS);
      const loop = spinner ? outsideSpinner() : undefined;
      try {
        const start = Date.now();
        await sleep(windowMs);
        // A loop that could not start (chrt refused, say) would make this the plain 7-worker run.
        if (loop && (loop.exitCode !== null || loop.signalCode !== null))
          throw new Error(`the outside loop exited early (${loop.exitCode ?? loop.signalCode})`);
        return start;
      } finally {
        loop?.kill('SIGKILL');
      }
    });
    const to = Math.min(from + windowMs, await lastFinishedAt(bench.db, 0));
    if (to - from < windowMs / 4) throw new Error('the noop backlog ran out too soon: raise spinBacklog');
    return (await noopsFinishedBetween(bench, from, to)) / ((to - from) / 1000);
  });
}

const timeout: ScenarioDefinition = {
  figures: (sizes) => [
    { id: 'timeout_kill_delay_p50', unit: 'ms', label: `timeout kill delay p50, ${sizes.spins} spins` },
    { id: 'timeout_kill_delay_max', unit: 'ms', label: 'timeout kill delay max' },
    {
      id: 'timeout_noops_with_spins',
      unit: 'jobs/s',
      label: `noops while spins run (${sizes.workers} workers, 1 spinning)`,
    },
    {
      id: 'timeout_noops_without_spins',
      unit: 'jobs/s',
      label: `noops, ${sizes.workers - 1} workers, no spins`,
    },
    { id: 'timeout_noops_ratio', unit: 'ratio', label: 'noops with spins / without' },
    {
      id: 'timeout_noops_outside_spinner',
      unit: 'jobs/s',
      label: `noops, ${sizes.workers - 1} workers, a lowest-priority loop outside LuxJob`,
    },
    { id: 'timeout_noops_ratio_outside', unit: 'ratio', label: 'noops with spins / beside the outside loop' },
  ],
  run: async ({ kind, sizes, earlier }) => {
    const backlog = spinBacklog(sizes, earlier('throughput'));
    progress(`  noop backlog ${n(backlog)}`);
    const spins = await runSpins(kind, sizes, backlog);
    const without = await runWithoutSpins(kind, sizes, backlog, spins.windowMs, false);
    const outside = await runWithoutSpins(kind, sizes, backlog, spins.windowMs, true);
    return {
      timeout_kill_delay_p50: percentile(spins.killDelays, 50),
      timeout_kill_delay_max: Math.max(...spins.killDelays),
      timeout_noops_with_spins: spins.noopRate,
      timeout_noops_without_spins: without,
      timeout_noops_ratio: spins.noopRate / without,
      timeout_noops_outside_spinner: outside,
      timeout_noops_ratio_outside: spins.noopRate / outside,
    };
  },
};

// ---------------------------------------------------------------- 4. memory

interface MemorySample {
  supervisor: number;
  /** Mean RSS of one worker. */
  worker: number;
}

function sampleMemory(supervisorPid: number): MemorySample {
  const supervisor = rssMb(supervisorPid);
  const workers = workerPids(supervisorPid)
    .map(rssMb)
    .filter((mb): mb is number => mb !== undefined);
  if (supervisor === undefined || workers.length === 0) throw new Error('cannot read the RSS from /proc');
  return { supervisor, worker: workers.reduce((a, b) => a + b, 0) / workers.length };
}

const memory: ScenarioDefinition = {
  figures: (sizes) => {
    const first = `at ${n(sizes.memorySampleAt)} done`;
    const last = `at ${n(sizes.memoryJobs)} done`;
    return [
      { id: 'memory_supervisor_first', unit: 'MB', label: `supervisor RSS ${first}` },
      { id: 'memory_supervisor_last', unit: 'MB', label: `supervisor RSS ${last}` },
      { id: 'memory_supervisor_growth', unit: 'MB', label: 'supervisor RSS growth' },
      { id: 'memory_worker_first', unit: 'MB', label: `worker RSS (mean) ${first}` },
      { id: 'memory_worker_last', unit: 'MB', label: `worker RSS (mean) ${last}` },
      { id: 'memory_worker_growth', unit: 'MB', label: 'worker RSS growth' },
    ];
  },
  run: ({ kind, sizes }) =>
    withDatabase(kind, 'memory', async (bench) => {
      await addNoops(bench.client, sizes.memoryJobs);
      const settings = { url: bench.url, dir: bench.dir, workers: sizes.workers, poll: FAST_POLL };
      return withSupervisor(settings, async (supervisor) => {
        await supervisor.running;
        await waitForDone(bench.db, 0, sizes.memorySampleAt);
        const first = sampleMemory(supervisor.pid);
        await waitForDone(bench.db, 0, sizes.memoryJobs);
        const last = sampleMemory(supervisor.pid);
        return {
          memory_supervisor_first: first.supervisor,
          memory_supervisor_last: last.supervisor,
          memory_supervisor_growth: last.supervisor - first.supervisor,
          memory_worker_first: first.worker,
          memory_worker_last: last.worker,
          memory_worker_growth: last.worker - first.worker,
        };
      });
    }),
};

// ---------------------------------------------------------------- 5. scale

/** Adds `claimRows` due noops, then times `claimCalls` claims of `claimLimit` each; median ms per claim. */
async function timeClaims(bench: BenchDatabase, sizes: Sizes): Promise<number> {
  await addNoops(bench.client, sizes.claimRows);
  const times: number[] = [];
  for (let i = 0; i < sizes.claimCalls; i++) {
    const now = new Date();
    const started = performance.now();
    const { jobs } = await claimJobs(bench.db, {
      supervisorId: 'bench',
      limit: sizes.claimLimit,
      now,
      leaseUntil: new Date(now.getTime() + 60_000),
    });
    times.push(performance.now() - started);
    if (jobs.length !== sizes.claimLimit) throw new Error(`claim ${i + 1} took ${jobs.length} rows`);
  }
  return median(times);
}

const scale: ScenarioDefinition = {
  figures: (sizes) => {
    const rows = n(sizes.scaleRows);
    const jobs = n(sizes.scaleJobs);
    const claim = `claim of ${sizes.claimLimit} (${n(sizes.claimRows)} due)`;
    return [
      { id: 'scale_seed', unit: 's', label: `insert ${rows} finished rows, one statement` },
      { id: 'scale_throughput_empty', unit: 'jobs/s', label: `throughput, ${jobs} noops, empty table` },
      { id: 'scale_throughput', unit: 'jobs/s', label: `throughput, ${jobs} noops, ${rows}-row table` },
      { id: 'scale_throughput_diff', unit: '%', label: 'throughput change vs empty table' },
      { id: 'claim_empty', unit: 'ms', label: `${claim}, empty table` },
      { id: 'claim_full', unit: 'ms', label: `${claim}, ${rows}-row table` },
      { id: 'claim_diff', unit: '%', label: 'claim time change vs empty table' },
    ];
  },
  // Empty and full are measured on the same database, back to back, with more jobs than
  // scenario 1 (a 5,000-job run lasts under a second, and its noise is several percent).
  run: ({ kind, sizes }) =>
    withDatabase(kind, 'scale', async (bench) => {
      const runJobs = { ...sizes, throughputJobs: sizes.scaleJobs };
      const claimEmpty = await timeClaims(bench, sizes);
      await bench.db.knex('lux_jobs').del(); // the claimed rows would be "recovered" by the supervisor
      const empty = await measureThroughput(bench, runJobs);
      await bench.db.knex('lux_jobs').del();
      progress(`  inserting ${n(sizes.scaleRows)} finished rows`);
      const started = performance.now();
      await seedFinishedRows(bench.db, sizes.scaleRows, new Date());
      const seedSeconds = (performance.now() - started) / 1000;
      await settle(bench.db);
      await waitForQuiet();
      const full = await measureThroughput(bench, runJobs);
      const claimFull = await timeClaims(bench, sizes);
      return {
        scale_seed: seedSeconds,
        scale_throughput_empty: empty.fromRunning,
        scale_throughput: full.fromRunning,
        scale_throughput_diff: percentDiff(full.fromRunning, empty.fromRunning),
        claim_empty: claimEmpty,
        claim_full: claimFull,
        claim_diff: percentDiff(claimFull, claimEmpty),
      };
    }),
};

// ---------------------------------------------------------------- driver

const DEFINITIONS: Record<Scenario, ScenarioDefinition> = { throughput, latency, timeout, memory, scale };

/** Every value measured so far, by "<kind>/<figure id>", one per run. */
type History = Map<string, number[]>;

async function runScenario(
  name: Scenario,
  kind: Kind,
  options: Options,
  sizes: Sizes,
  report: Report,
  history: History,
): Promise<void> {
  const definition = DEFINITIONS[name];
  const measured = new Map<string, number[]>();
  for (let run = 0; run < options.runs; run++) {
    const waited = await waitForQuiet();
    progress(
      `[${kind}] ${name}: run ${run + 1} of ${options.runs}${waited > 600 ? ` (after ${waited} ms for the machine to be quiet)` : ''}`,
    );
    const values = await definition.run({
      kind,
      sizes,
      run,
      earlier: (id) => history.get(`${kind}/${id}`)?.[run],
    });
    for (const [id, value] of Object.entries(values)) measured.set(id, [...(measured.get(id) ?? []), value]);
    const shown = Object.entries(values).map(([id, value]) => `${id}=${formatNumber(value)}`);
    progress(`  ${shown.join(' ')}`);
  }
  for (const figure of definition.figures(sizes, kind)) {
    const values = measured.get(figure.id);
    if (!values) continue;
    report.record(kind, figure, values);
    history.set(`${kind}/${figure.id}`, values);
  }
}

async function main(): Promise<number> {
  let options: Options;
  try {
    mapBenchUrls();
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof TypeError)) throw err;
    console.error(`bench: ${err.message}`);
    return 2;
  }
  const sizes = sizesFor(options.smoke);
  const scenarios = options.only;
  progress(
    `LuxJob bench (${options.smoke ? 'smoke' : 'full'}): ${options.runs} run(s) of ${scenarios.join(', ')} on ${options.dbs.join(', ')}`,
  );
  const report = new Report();
  // PostgreSQL's figures are a superset of the others' (the NOTIFY latency).
  for (const name of scenarios) report.declare(DEFINITIONS[name].figures(sizes, 'pg'));
  const history: History = new Map();
  const versions = new Map<Kind, string>();
  const failures: string[] = [];
  for (const kind of options.dbs) {
    try {
      versions.set(kind, await serverVersion(kind));
    } catch (err) {
      failures.push(`${kind}: cannot open a database: ${(err as Error).message}`);
      continue;
    }
    for (const name of scenarios) {
      try {
        await runScenario(name, kind, options, sizes, report, history);
      } catch (err) {
        failures.push(`${kind} ${name}: ${(err as Error).stack ?? err}`);
        progress(`[${kind}] ${name} FAILED: ${(err as Error).message}`);
      }
    }
  }
  const mode = options.smoke ? 'smoke sizes' : 'full sizes';
  console.log(`\n## LuxJob benchmark (${mode}; median (min–max) of ${options.runs} run(s))\n`);
  console.log(report.markdown());
  console.log(`\n${describeMachine(versions)}`);
  for (const failure of failures) console.error(`\nFAILED ${failure}`);
  return failures.length > 0 ? 1 : 0;
}

process.on('SIGINT', () => {
  killAllSupervisors();
  process.exit(130);
});

main().then(
  (code) => process.exit(code),
  (err) => {
    killAllSupervisors();
    console.error(err);
    process.exit(1);
  },
);
