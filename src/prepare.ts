import type { ResolvedJob } from './catalogue';
import { UnknownJobError } from './errors';
import { type AddOptions, checkAddOptions, encodeOpts, normaliseRunAt } from './payload';
import type { NewJob } from './queries/enqueue';

/** Validates and encodes one `add()` call; shared by the API and by handlers' ctx.add(). */
export function prepareJob(
  jobs: ReadonlyMap<string, ResolvedJob>,
  name: string,
  opts: unknown,
  options: AddOptions = {},
  now = new Date(),
): NewJob {
  if (!jobs.has(name)) throw new UnknownJobError(name, [...jobs.keys()]);
  checkAddOptions(options);
  return {
    name,
    opts: encodeOpts(opts),
    runAt: normaliseRunAt(options.runAt) ?? now,
    priority: options.priority ?? 0,
    ...(options.key !== undefined ? { key: options.key } : {}),
  };
}
