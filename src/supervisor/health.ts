import { isConnectionError } from '../db';
import { DatabaseUnavailableError } from '../errors';

/**
 * Whether the database answered lately. While it does not, the supervisor
 * stops claiming and retries with backoff; it keeps its workers and the
 * results they produce.
 */
export class DatabaseHealth {
  private down = false;
  private failures = 0;
  private retryAt = 0;
  /** When the database last came back after an outage; 0 when none was seen. */
  healthySince = 0;

  constructor(private readonly onChange: (up: boolean, detail: string, unreachable: boolean) => void) {}

  get isDown(): boolean {
    return this.down;
  }

  /** May we try the database now? While down, only after the backoff delay. */
  canTry(now = Date.now()): boolean {
    return !this.down || now >= this.retryAt;
  }

  failed(err: unknown, now = Date.now()): void {
    this.failures++;
    const backoff = Math.min(5000, 250 * 2 ** Math.min(this.failures - 1, 5));
    this.retryAt = now + backoff;
    if (!this.down) {
      this.down = true;
      const unreachable = isConnectionError(err) || err instanceof DatabaseUnavailableError;
      this.onChange(
        false,
        `${err instanceof Error ? err.message : String(err)}; retrying with backoff`,
        unreachable,
      );
    }
  }

  succeeded(now = Date.now()): void {
    if (this.down) {
      this.down = false;
      this.healthySince = now;
      this.onChange(true, `after ${this.failures} failed attempts`, false);
    }
    this.failures = 0;
  }
}
