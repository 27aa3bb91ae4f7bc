/**
 * Activities of the suite. They run inside the test process (the worker is in-process), so they
 * record what they saw in `observations`, which the tests read back.
 */
import { CancelledFailure, Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';

/** key (normally a workflow id) -> things an activity noticed, in order */
export const observations = new Map<string, string[]>();

function observe(key: string, what: string): void {
  const list = observations.get(key) ?? [];
  list.push(what);
  observations.set(key, list);
}

export async function greet(name: string): Promise<string> {
  return `Hello, ${name}!`;
}

export interface TimeoutReport {
  scheduleToCloseTimeoutMs: number;
  startToCloseTimeoutMs: number;
  heartbeatTimeoutMs: number | null;
  attempt: number;
  activityType: string;
}

/** Returns the timeouts the worker received with the activity task. */
export async function reportTimeouts(): Promise<TimeoutReport> {
  const info = Context.current().info;
  return {
    scheduleToCloseTimeoutMs: info.scheduleToCloseTimeoutMs,
    startToCloseTimeoutMs: info.startToCloseTimeoutMs,
    heartbeatTimeoutMs: info.heartbeatTimeoutMs ?? null,
    attempt: info.attempt,
    activityType: info.activityType,
  };
}

/**
 * First attempt: records a heartbeat with details, waits until it has surely reached the server,
 * then fails with a retryable error. Later attempts return what the server handed back.
 */
export async function heartbeatThenFail(marker: string): Promise<{ attempt: number; details: unknown }> {
  const ctx = Context.current();
  if (ctx.info.attempt === 1) {
    ctx.heartbeat({ marker, progress: 41 });
    await ctx.sleep(1500);
    throw ApplicationFailure.retryable('first attempt fails on purpose', 'TransientError');
  }
  return { attempt: ctx.info.attempt, details: ctx.info.heartbeatDetails };
}

/** Heartbeats every 100 ms until cancelled (up to ~30 s), recording the cancellation it sees. */
export async function heartbeatUntilCancelled(key: string): Promise<string> {
  const ctx = Context.current();
  observe(key, 'started');
  for (let i = 0; i < 300; i++) {
    ctx.heartbeat(i);
    try {
      await ctx.sleep(100);
    } catch (err) {
      if (err instanceof CancelledFailure) {
        observe(key, `CancelledFailure:${err.message}`);
      } else {
        observe(key, `other:${String(err)}`);
      }
      throw err;
    }
  }
  observe(key, 'never-cancelled');
  return 'never cancelled';
}

/** Fails with `RetryMe` until attempt `fatalAt`, where it fails with a non-retryable error type. */
export async function failUntilFatal(fatalAt: number): Promise<string> {
  const { attempt } = Context.current().info;
  if (attempt < fatalAt) throw ApplicationFailure.create({ type: 'RetryMe', message: `attempt ${attempt}` });
  throw ApplicationFailure.create({ type: 'FatalError', message: `fatal at attempt ${attempt}`, details: [attempt] });
}

/** Throws an ApplicationFailure marked non-retryable by itself. */
export async function failNonRetryableFlag(): Promise<string> {
  const { attempt } = Context.current().info;
  throw ApplicationFailure.nonRetryable(`flagged at attempt ${attempt}`, 'FlaggedError');
}

/** Succeeds on attempt `okAt`; fails before. Returns the attempt it succeeded on. */
export async function flaky(okAt: number): Promise<number> {
  const { attempt } = Context.current().info;
  if (attempt < okAt) throw ApplicationFailure.retryable(`not yet (attempt ${attempt})`, 'Flaky');
  return attempt;
}

export async function localInfo(): Promise<{ isLocal: boolean; attempt: number }> {
  const info = Context.current().info;
  return { isLocal: info.isLocal, attempt: info.attempt };
}

export async function recordCleanup(key: string): Promise<string> {
  observe(key, 'cleanup');
  return 'cleaned';
}
