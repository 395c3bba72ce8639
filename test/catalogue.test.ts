// Invalid definitions fail at load, with an error naming the job and the field.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { CatalogueLoadError, DefinitionError, defineJobs, loadCatalogue } from '../dist/index.js';

const run = () => 'ok';

const invalid: Array<[string, unknown, RegExp]> = [
  [
    'bad cron',
    { a: { run, cron: '61 * * * *' } },
    /job "a": cron "61 \* \* \* \*" is invalid: 61 is a invalid expression for minute/,
  ],
  ['cron with 4 fields', { a: { run, cron: '* * * *' } }, /job "a": cron must have 5 or 6 fields \(got 4\)/],
  ['cron not a string', { a: { run, cron: 5 } }, /job "a": cron must be a string/],
  [
    'bad timezone',
    { a: { run, cron: '0 3 * * *', timezone: 'Mars/Olympus' } },
    /job "a": timezone must be an IANA time zone like 'Europe\/Berlin' \(got "Mars\/Olympus"\)/,
  ],
  [
    'timezone without cron',
    { a: { run, every: '1h', timezone: 'UTC' } },
    /job "a": timezone only applies to a cron schedule/,
  ],
  [
    'both every and cron',
    { a: { run, every: 60, cron: '* * * * *' } },
    /job "a": every\/cron cannot both be set/,
  ],
  ['timeout zero', { a: { run, timeout: 0 } }, /job "a": timeout must be a number of seconds > 0 \(got 0\)/],
  [
    'timeout negative',
    { a: { run, timeout: -5 } },
    /job "a": timeout must be a number of seconds > 0 \(got -5\)/,
  ],
  [
    'timeout text',
    { a: { run, timeout: '10' } },
    /job "a": timeout must be a number of seconds > 0 \(got "10"\)/,
  ],
  ['no run', { a: { every: '1h' } }, /job "a": run must be a function \(got undefined\)/],
  ['run not a function', { a: { run: 'x' } }, /job "a": run must be a function \(got "x"\)/],
  [
    'bad every',
    { a: { run, every: '5 minutes' } },
    /job "a": every must be seconds > 0 or a duration like '90s', '15m', '1h', '1d' \(got "5 minutes"\)/,
  ],
  ['every zero', { a: { run, every: 0 } }, /job "a": every must be seconds > 0/],
  ['unknown field', { a: { run, evry: '1h' } }, /job "a": evry is not a known field/],
  ['retries fraction', { a: { run, retries: 1.5 } }, /job "a": retries must be a whole number >= 0/],
  ['bad name', { 'has space': { run } }, /job "has space": name must be 1-191 letters/],
  ['definition not an object', { a: 42 }, /job "a": definition must be an object/],
];

for (const [label, catalogue, message] of invalid) {
  t.test(label, async (t) => {
    t.throws(() => defineJobs(catalogue as never), message);
    try {
      defineJobs(catalogue as never);
    } catch (err) {
      t.type(err, DefinitionError);
      t.equal((err as DefinitionError).job, Object.keys(catalogue as object)[0]);
    }
  });
}

t.test('valid forms are accepted', async (t) => {
  const jobs = defineJobs({
    seconds: { run, every: 90 },
    minutes: { run, every: '15m' },
    hours: { run, every: '1h' },
    days: { run, every: '1d' },
    secs: { run, every: '90s' },
    five: { run, cron: '*/5 * * * *' },
    six: { run, cron: '*/10 * * * * *' },
    zoned: { run, cron: '0 3 * * *', timezone: 'Europe/Berlin' },
    oneOff: { run, timeout: 300, retries: 0 },
  });
  t.equal(Object.keys(jobs).length, 9);
});

t.test('loading a catalogue module', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luxjob-cat-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  const js = await loadCatalogue(write('ok.js', 'module.exports = { a: { every: "1h", run: () => 1 } };'));
  t.same(js.get('a')?.schedule, { kind: 'every', seconds: 3600 }, 'CommonJS module.exports');
  const esm = await loadCatalogue(
    write('ok.mjs', 'export default { b: { cron: "0 * * * *", run: () => 1 } };'),
  );
  t.same(
    esm.get('b')?.schedule,
    { kind: 'cron', expression: '0 * * * *', timezone: undefined },
    'ES module default export',
  );
  const ts = await loadCatalogue(
    write('ok.ts', 'export default { c: { timeout: 5, run: (o: { n: number }) => o.n } };'),
  );
  t.equal(ts.get('c')?.timeoutSeconds, 5, 'TypeScript through tsx');

  await t.rejects(loadCatalogue(path.join(dir, 'missing.js')), {
    name: 'CatalogueLoadError',
    message: /job catalogue not found: .*missing\.js \(set LUXJOB_JOBS or --jobs/,
  });
  await t.rejects(loadCatalogue(write('syntax.js', 'module.exports = {')), CatalogueLoadError);
  await t.rejects(loadCatalogue(write('empty.js', 'module.exports = {};')), { message: /exports no jobs/ });
  await t.rejects(loadCatalogue(write('throws.js', 'throw new Error("config missing")')), {
    message: /failed to load: config missing/,
  });
  await t.rejects(
    loadCatalogue(write('badcron.js', 'module.exports = { nightly: { cron: "99 * * * *", run() {} } };')),
    {
      name: 'DefinitionError',
      message: /job "nightly": cron/,
    },
  );
});
