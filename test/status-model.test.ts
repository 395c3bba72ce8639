// The status model of DESIGN.md: retries at 60 × 1.6^(n−1) s, x after the last, recurring runs go on.
import t from 'tap';
import { MAX_RETRIES, RETRY_BASE_WAIT, retryDelaySeconds } from '../dist/index.js';
import { nextCronTime, nextOccurrence } from '../dist/schedule.js';
import { transition } from '../dist/transitions.js';

const policy = { maxRetries: MAX_RETRIES, retryBaseWait: RETRY_BASE_WAIT };
const failure = { type: 'failure', kind: 'error', error: { name: 'Error', message: 'boom' } } as const;
const oneOff = (retryCount: number) => ({
  id: 1,
  name: 'a',
  opts: '{}',
  retryCount,
  runAt: new Date(0),
  schedule: null as string | null,
  startedAt: new Date(0),
});

t.test('retry delays follow 60 × 1.6^(n−1) and total about 43 minutes', async (t) => {
  const expected = [60, 96, 153.6, 245.76, 393.216, 629.1456, 1006.63296];
  for (let n = 1; n <= 7; n++)
    t.ok(Math.abs(retryDelaySeconds(n, 60) - expected[n - 1]!) < 1e-9, `retry ${n}: ${expected[n - 1]} s`);
  const total = expected.reduce((a, b) => a + b, 0);
  t.ok(total / 60 > 42 && total / 60 < 44, `total ${(total / 60).toFixed(1)} min`);
});

t.test('a one-off job: seven retries, then permanently failed', async (t) => {
  const now = new Date('2026-01-01T00:00:00Z');
  for (let retry = 0; retry < 7; retry++) {
    const update = transition(oneOff(retry), failure, { startedAt: now, now, policy });
    t.equal(update.status_sid, 'f');
    t.equal(update.retry_count, retry + 1);
    const wait = update.run_at!.getTime() - now.getTime();
    t.ok(Math.abs(wait - 60_000 * 1.6 ** retry) < 1, `retry ${retry + 1} waits ${wait} ms`);
  }
  const last = transition(oneOff(7), failure, { startedAt: now, now, policy });
  t.equal(last.status_sid, 'x', 'the 8th failure gives x');
  t.equal(last.run_at, null);
  t.equal(last.queued, 0);
  t.equal(last.unique_key, null, 'an ended job releases its dedup key');
  t.same(JSON.parse(last.response!), { kind: 'error', error: 'Error', message: 'boom' });
});

t.test('a lost supervisor: counted, but due at once', async (t) => {
  const now = new Date('2026-01-01T00:00:00Z');
  const lost = {
    type: 'failure',
    kind: 'lost',
    error: { name: 'SupervisorLostError', message: 'supervisor lost: h/1' },
  } as const;
  const update = transition(oneOff(0), lost, { startedAt: now, now, policy });
  t.match(update, { status_sid: 'f', retry_count: 1 });
  t.equal(update.run_at!.getTime(), now.getTime());
  t.equal(
    transition(oneOff(7), lost, { startedAt: now, now, policy }).status_sid,
    'x',
    'and still ends in x',
  );
});

t.test('success and put-back', async (t) => {
  const now = new Date('2026-01-01T00:00:00Z');
  const done = transition(oneOff(2), { type: 'success', response: 'ok' }, { startedAt: now, now, policy });
  t.match(done, { status_sid: 'd', run_at: null, queued: 0, response: 'ok', retry_count: 2 });
  const back = transition(oneOff(2), { type: 'put-back' }, { startedAt: now, now, policy });
  t.match(back, { status_sid: 's', queued: 1, retry_count: 2 }, 'shutdown does not count a failure');
  t.equal(back.run_at!.getTime(), 0, 'it keeps its place in the queue (its old run_at)');
  const unstarted = transition(
    { ...oneOff(0), runAt: null },
    { type: 'put-back', started: false },
    { startedAt: now, now, policy },
  );
  t.match(unstarted, { status_sid: 's', queued: 1, retry_count: 0 }, 'claimed ahead, never started');
  t.equal(unstarted.run_at!.getTime(), now.getTime(), 'due at once when it had no run_at');
});

t.test('recurring rows', async (t) => {
  const started = new Date('2026-01-01T10:00:00.250Z');
  const now = new Date('2026-01-01T10:00:01Z');
  const every = { ...oneOff(0), schedule: 'every 3600' };
  const ok = transition(every, { type: 'success', response: 'done' }, { startedAt: started, now, policy });
  t.equal(ok.status_sid, 'd');
  t.equal(ok.run_at!.toISOString(), '2026-01-01T11:00:00.250Z', 'every: this run’s start + interval');
  t.equal(ok.queued, 1);

  const failing = transition({ ...every, retryCount: 7 }, failure, { startedAt: started, now, policy });
  t.equal(failing.status_sid, 'x', 'gives up the occurrence');
  t.equal(failing.retry_count, 0);
  t.equal(
    failing.run_at!.toISOString(),
    '2026-01-01T11:00:00.250Z',
    'and resumes at the next regular occurrence',
  );
  t.equal(failing.queued, 1);

  const realNow = new Date();
  const cron = { ...oneOff(0), schedule: 'cron 30 7 * * * tz Europe/Berlin', runAt: realNow };
  const next = transition(
    cron,
    { type: 'success', response: '' },
    { startedAt: realNow, now: realNow, policy },
  ).run_at!;
  const berlin = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/Berlin',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(next);
  t.equal(berlin, '07:30', 'cron: the next run is 07:30 Berlin time');
  t.ok(next > realNow && next.getTime() - realNow.getTime() <= 86_400_000, 'within the next day');
});

t.test('cron across a time zone and DST', async (t) => {
  const summer = nextCronTime('30 7 * * *', 'Europe/Berlin', new Date(Date.now() + 0));
  t.ok(summer.getTime() > Date.now());
  // nextOccurrence never returns the occurrence that just ran, even if this clock lags behind it.
  const scheduledAt = new Date(Date.now() + 60_000);
  const after = nextOccurrence(
    { kind: 'cron', expression: '* * * * *', timezone: undefined },
    { startedAt: new Date(), scheduledAt, now: new Date() },
  );
  t.ok(after.getTime() > scheduledAt.getTime(), 'next cron time is after the scheduled occurrence');
  const ny = nextCronTime('0 9 * * *', 'America/New_York', new Date());
  const hourInNy = Number(
    new Intl.DateTimeFormat('en-US', {
      timeZone: 'America/New_York',
      hour: 'numeric',
      hourCycle: 'h23',
    }).format(ny),
  );
  t.equal(hourInNy, 9, '09:00 in New York');
});
