// The benchmark's job catalogue: plain CommonJS, so workers start without a TypeScript loader.

module.exports = {
  /** Does nothing: measures the queue, not the job. */
  noop: { run: () => undefined },
  /** Milliseconds from enqueue (opts.t, set by the bench) to the handler starting. */
  latency: {
    /** @param {{ t: number }} opts */
    run: (opts) => Date.now() - opts.t,
  },
  /** Stuck in synchronous code until the 1 s timeout kills its worker; no retry, so it ends in `x`. */
  spin: {
    timeout: 1,
    retries: 0,
    run: () => {
      while (true) {
        // only SIGKILL ends this
      }
    },
  },
};
