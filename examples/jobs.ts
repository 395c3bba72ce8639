// The seed's three jobs plus a cron job with a time zone.
// Run them: npx luxjob start --migrate --jobs examples/jobs.ts
import { defineJobs } from 'luxjob';

export default defineJobs({
  // Recurring: every hour (the first run happens when the supervisor starts).
  cleanup: {
    every: '1h',
    run: async (_opts: Record<string, never>, ctx) => {
      ctx.logger.info('cleaning up');
      return 'done';
    },
  },

  // One-off: enqueue with `npx luxjob add send_email '{"to":"user@example.com","subject":"Hello"}'`.
  send_email: {
    run: async (opts: { to: string; subject?: string; body?: string }) => {
      await new Promise((resolve) => setTimeout(resolve, 100)); // stands in for the mail server
      return `sent to ${opts.to}`;
    },
  },

  // Daily, with a five-minute timeout instead of the default 60 s.
  long_report: {
    every: '1d',
    timeout: 300,
    run: async (_opts: Record<string, never>, ctx) => {
      ctx.logger.info('generating all reports');
      return { reports: 3 };
    },
  },

  // Cron in a time zone: 07:30 on weekdays, Berlin time, whatever the server's zone.
  morning_digest: {
    cron: '30 7 * * 1-5',
    timezone: 'Europe/Berlin',
    run: async (_opts: Record<string, never>, ctx) => {
      await ctx.add('send_email', { to: 'team@example.com', subject: 'Morning digest' });
      return 'digest queued';
    },
  },
});
