/**
 * Workflows of the suite (bundled by the worker; only deterministic workflow APIs in here).
 */
import {
  ActivityFailure,
  ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ParentClosePolicy,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import type * as activities from './activities';

export const KW_KEY = defineSearchAttributeKey('CustomKeywordField', SearchAttributeType.KEYWORD);
export const INT_KEY = defineSearchAttributeKey('CustomIntField', SearchAttributeType.INT);

/** Activity options used where a test is not about timeouts: both timeouts set. */
const bothTimeouts: ActivityOptions = { scheduleToCloseTimeout: '30s', startToCloseTimeout: '10s' };

// ------------------------------------------------------------------ activities

/** The classic hello world: an activity with only startToCloseTimeout. */
export async function helloActivity(name: string): Promise<string> {
  const { greet } = proxyActivities<typeof activities>({ startToCloseTimeout: '10s' });
  return await greet(name);
}

export const TIMEOUT_VARIANTS: Record<string, ActivityOptions> = {
  scheduleToCloseOnly: { scheduleToCloseTimeout: '20s' },
  startToCloseOnly: { startToCloseTimeout: '10s' },
  scheduleToCloseAndStartToClose: { scheduleToCloseTimeout: '20s', startToCloseTimeout: '10s' },
  scheduleToStartAndStartToClose: { scheduleToStartTimeout: '15s', startToCloseTimeout: '10s' },
  scheduleToStartAndScheduleToClose: { scheduleToStartTimeout: '15s', scheduleToCloseTimeout: '20s' },
  allThreeTimeouts: { scheduleToStartTimeout: '15s', scheduleToCloseTimeout: '20s', startToCloseTimeout: '10s' },
  heartbeatWithBoth: { scheduleToCloseTimeout: '20s', startToCloseTimeout: '10s', heartbeatTimeout: '3s' },
  heartbeatWithStartToClose: { startToCloseTimeout: '10s', heartbeatTimeout: '3s' },
};

export async function activityTimeouts(variant: string): Promise<activities.TimeoutReport> {
  const opts = TIMEOUT_VARIANTS[variant];
  if (!opts) throw ApplicationFailure.nonRetryable(`unknown variant ${variant}`);
  const { reportTimeouts } = proxyActivities<typeof activities>({ ...opts, retry: { maximumAttempts: 2 } });
  return await reportTimeouts();
}

export async function heartbeatRetry(marker: string): Promise<{ attempt: number; details: unknown }> {
  const { heartbeatThenFail } = proxyActivities<typeof activities>({
    ...bothTimeouts,
    heartbeatTimeout: '5s',
    retry: { initialInterval: '200ms', backoffCoefficient: 1, maximumAttempts: 3 },
  });
  return await heartbeatThenFail(marker);
}

/** Cancels a heartbeating activity from a CancellationScope and reports what the workflow saw. */
export async function cancelActivity(): Promise<{ outcome: string; causeType: string }> {
  const key = workflowInfo().workflowId;
  const { heartbeatUntilCancelled } = proxyActivities<typeof activities>({
    ...bothTimeouts,
    heartbeatTimeout: '2s',
    cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    retry: { maximumAttempts: 1 },
  });
  const scope = new CancellationScope();
  const running = scope.run(() => heartbeatUntilCancelled(key));
  await sleep(1500);
  scope.cancel();
  try {
    await running;
    return { outcome: 'completed', causeType: '' };
  } catch (err) {
    if (err instanceof ActivityFailure && err.cause instanceof CancelledFailure) {
      return { outcome: 'ActivityFailure', causeType: 'CancelledFailure' };
    }
    if (isCancellation(err)) return { outcome: 'cancellation', causeType: String((err as Error).name) };
    throw err;
  }
}

export interface FailureView {
  failureType: string;
  message: string;
  causeType?: string;
  causeMessage?: string;
  causeNonRetryable?: boolean;
  causeDetails?: unknown[];
}

/** A plain view of the error an activity call threw (ActivityFailure for activities; whatever a local activity gives). */
function viewFailure(err: unknown): FailureView {
  if (err instanceof ApplicationFailure) {
    return {
      failureType: 'ApplicationFailure',
      message: err.message,
      causeType: err.type ?? '',
      causeMessage: err.message,
      causeNonRetryable: err.nonRetryable ?? undefined,
      causeDetails: err.details ?? undefined,
    };
  }
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    return {
      failureType: 'ActivityFailure',
      message: err.message,
      causeType: cause instanceof ApplicationFailure ? (cause.type ?? '') : String(cause?.name),
      causeMessage: cause?.message,
      causeNonRetryable: cause instanceof ApplicationFailure ? (cause.nonRetryable ?? undefined) : undefined,
      causeDetails: cause instanceof ApplicationFailure ? (cause.details ?? undefined) : undefined,
    };
  }
  throw err;
}

/** Retries `failUntilFatal` until it fails with a type listed as non-retryable. */
export async function nonRetryableTypes(fatalAt: number): Promise<FailureView> {
  const { failUntilFatal } = proxyActivities<typeof activities>({
    ...bothTimeouts,
    retry: { initialInterval: '100ms', backoffCoefficient: 1, maximumAttempts: 10, nonRetryableErrorTypes: ['FatalError'] },
  });
  try {
    await failUntilFatal(fatalAt);
    return { failureType: 'none', message: 'activity unexpectedly succeeded' };
  } catch (err) {
    return viewFailure(err);
  }
}

export async function nonRetryableFlag(): Promise<FailureView> {
  const { failNonRetryableFlag } = proxyActivities<typeof activities>({
    ...bothTimeouts,
    retry: { initialInterval: '100ms', maximumAttempts: 10 },
  });
  try {
    await failNonRetryableFlag();
    return { failureType: 'none', message: 'activity unexpectedly succeeded' };
  } catch (err) {
    return viewFailure(err);
  }
}

export async function localActivities(okAt: number): Promise<{ greeting: string; info: { isLocal: boolean; attempt: number }; succeededOn: number }> {
  const local = proxyLocalActivities<typeof activities>({
    startToCloseTimeout: '5s',
    retry: { initialInterval: '50ms', backoffCoefficient: 1, maximumAttempts: 5 },
  });
  const greeting = await local.greet('local');
  const info = await local.localInfo();
  const succeededOn = await local.flaky(okAt);
  return { greeting, info, succeededOn };
}

export async function localActivityExhausted(): Promise<FailureView> {
  const { flaky } = proxyLocalActivities<typeof activities>({
    startToCloseTimeout: '5s',
    retry: { initialInterval: '50ms', backoffCoefficient: 1, maximumAttempts: 2 },
  });
  try {
    await flaky(100);
    return { failureType: 'none', message: 'local activity unexpectedly succeeded' };
  } catch (err) {
    return viewFailure(err);
  }
}

// ------------------------------------------------------------------ child workflows

export async function childGreet(name: string): Promise<string> {
  return `child greets ${name} (parent ${workflowInfo().parent?.workflowId ?? 'none'})`;
}

export async function childFails(msg: string): Promise<never> {
  throw ApplicationFailure.create({ type: 'ChildBoom', message: msg, details: ['child-detail', 7], nonRetryable: true });
}

/** Waits (up to an hour) for a `release` signal. */
export async function childWaits(): Promise<string> {
  let released = false;
  setHandler(releaseSignal, () => {
    released = true;
  });
  await condition(() => released, '1h');
  return released ? 'released' : 'timed out';
}

export const releaseSignal = defineSignal('release');

export async function parentResult(name: string): Promise<string> {
  return await executeChild(childGreet, { args: [name], workflowId: `${workflowInfo().workflowId}-child` });
}

/** Lets the child's failure propagate: the parent fails with ChildWorkflowFailure(ApplicationFailure). */
export async function parentOfFailingChild(msg: string): Promise<string> {
  return await executeChild(childFails, { args: [msg], workflowId: `${workflowInfo().workflowId}-child` });
}

/** Starts a waiting child with the given parent close policy and completes right away. */
export async function parentCloses(policy: ParentClosePolicy): Promise<string> {
  const child = await startChild(childWaits, {
    workflowId: `${workflowInfo().workflowId}-child`,
    parentClosePolicy: policy,
  });
  return child.workflowId;
}

export async function parentWithChildMetadata(): Promise<string> {
  return await executeChild(childGreet, {
    args: ['metadata'],
    workflowId: `${workflowInfo().workflowId}-child`,
    staticSummary: 'child summary from the parent',
    staticDetails: 'child **details** from the parent',
  });
}

// ------------------------------------------------------------------ signals and queries

export const addSignal = defineSignal<[string]>('add');
export const doneSignal = defineSignal('done');
export const itemsQuery = defineQuery<string[]>('items');

/** Collects `add` signals until `done`, then returns them. */
export async function signalCollector(): Promise<string[]> {
  const items: string[] = [];
  let done = false;
  setHandler(addSignal, (v: string) => {
    items.push(v);
  });
  setHandler(doneSignal, () => {
    done = true;
  });
  setHandler(itemsQuery, () => items);
  await condition(() => done, '1h');
  return items;
}

export const stateQuery = defineQuery<{ stage: string; plus: number }, [number]>('state');
export const failingQuery = defineQuery<string>('explodes');

export async function queryable(): Promise<string> {
  let stage = 'waiting';
  let finish = false;
  setHandler(stateQuery, (n: number) => ({ stage, plus: n + 1 }));
  setHandler(failingQuery, () => {
    throw new Error('query handler exploded on purpose');
  });
  setHandler(doneSignal, () => {
    finish = true;
  });
  await condition(() => finish, '1h');
  stage = 'finished';
  return stage;
}

// ------------------------------------------------------------------ timers

export async function timer(ms: number): Promise<number> {
  const t0 = Date.now();
  await sleep(ms);
  return Date.now() - t0;
}

/** Starts an hour-long timer in a scope, lets it reach the server, then cancels it. */
export async function cancelledTimer(): Promise<string> {
  const scope = new CancellationScope();
  const long = scope.run(() => sleep('1h'));
  await sleep(200);
  scope.cancel();
  try {
    await long;
    return 'timer fired';
  } catch (err) {
    if (err instanceof CancelledFailure) return 'timer cancelled';
    throw err;
  }
}

// ------------------------------------------------------------------ continue-as-new

export async function countdown(n: number, seen: number[]): Promise<{ seen: number[]; continuedFrom: boolean }> {
  const now = [...seen, n];
  if (n > 0) await continueAsNew<typeof countdown>(n - 1, now);
  return { seen: now, continuedFrom: !!workflowInfo().continuedFromExecutionRunId };
}

// ------------------------------------------------------------------ search attributes and memo

export async function searchAttributes(newKeyword: string): Promise<{ kwBefore?: string; intBefore?: number; kwAfter?: string }> {
  const before = workflowInfo().typedSearchAttributes;
  const kwBefore = before.get(KW_KEY);
  const intBefore = before.get(INT_KEY);
  upsertSearchAttributes([{ key: KW_KEY, value: newKeyword }]);
  const kwAfter = workflowInfo().typedSearchAttributes.get(KW_KEY);
  await sleep(10); // one more workflow task, so the upsert is in history before completion
  return { kwBefore, intBefore, kwAfter };
}

export async function memoEcho(): Promise<Record<string, unknown> | undefined> {
  return workflowInfo().memo;
}

export async function memoUpsert(extra: string): Promise<Record<string, unknown> | undefined> {
  upsertMemo({ extra, removed: null });
  await sleep(10);
  return workflowInfo().memo;
}

// ------------------------------------------------------------------ cancel, terminate, fail

/** Sleeps an hour; on cancellation runs a cleanup activity (non-cancellable) and rethrows. */
export async function cancellable(): Promise<string> {
  const key = workflowInfo().workflowId;
  const { recordCleanup } = proxyActivities<typeof activities>(bothTimeouts);
  try {
    await sleep('1h');
    return 'slept an hour';
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => recordCleanup(key));
    }
    throw err;
  }
}

export async function failsWithDetails(): Promise<never> {
  throw ApplicationFailure.create({
    type: 'MyAppError',
    message: 'custom failure',
    details: [{ code: 42, reason: 'because' }, 'second'],
    nonRetryable: true,
  });
}

export async function info(): Promise<Record<string, unknown>> {
  const i = workflowInfo();
  return {
    workflowId: i.workflowId,
    runId: i.runId,
    workflowType: i.workflowType,
    taskQueue: i.taskQueue,
    namespace: i.namespace,
    attempt: i.attempt,
    firstExecutionRunId: i.firstExecutionRunId,
    historyLength: i.historyLength,
    workflowRunTimeoutMs: i.runTimeoutMs ?? null,
  };
}

// ------------------------------------------------------------------ user metadata

/** A timer and an activity with summaries, current details, then waits for `done`. */
export async function metadataCommands(): Promise<string> {
  const { greet } = proxyActivities<typeof activities>({ ...bothTimeouts, summary: 'greeting activity summary' });
  setCurrentDetails('current details: step 1');
  await sleep(50, { summary: 'short nap summary' });
  const g = await greet('metadata');
  setCurrentDetails('current details: step 2');
  let done = false;
  setHandler(doneSignal, () => {
    done = true;
  });
  await condition(() => done, '1h');
  return g;
}

// ------------------------------------------------------------------ updates

/** Appends an item and returns how many there are; the validator refuses "bad". */
export const addUpdate = defineUpdate<number, [string]>('add');
/** Like add, but only once the `release` signal came. */
export const addWhenReleasedUpdate = defineUpdate<number, [string]>('addWhenReleased');
/** Always fails with an ApplicationFailure of type UpdateBoom. */
export const boomUpdate = defineUpdate<void, [string]>('boom');
/** Lets the main function return. */
export const finishUpdate = defineUpdate<string>('finish');
/** How many times each update handler (not validator) ran, and the items. */
export const updateStateQuery = defineQuery<{ items: string[]; handlerRuns: Record<string, number> }>('updateState');

/** Collects items through updates until `finish`, then returns them. */
export async function updatable(): Promise<string[]> {
  const items: string[] = [];
  const handlerRuns: Record<string, number> = {};
  const ran = (name: string) => {
    handlerRuns[name] = (handlerRuns[name] ?? 0) + 1;
  };
  let released = false;
  let finished = false;
  setHandler(
    addUpdate,
    (item: string) => {
      ran('add');
      items.push(item);
      return items.length;
    },
    {
      validator: (item: string) => {
        if (item === 'bad') throw new Error(`no bad items (got ${JSON.stringify(item)})`);
      },
    }
  );
  setHandler(addWhenReleasedUpdate, async (item: string) => {
    ran('addWhenReleased');
    await condition(() => released, '1h');
    items.push(item);
    return items.length;
  });
  setHandler(boomUpdate, (msg: string) => {
    ran('boom');
    throw ApplicationFailure.create({ type: 'UpdateBoom', message: msg, details: ['boom-detail'], nonRetryable: true });
  });
  setHandler(finishUpdate, () => {
    ran('finish');
    finished = true;
    return 'finished';
  });
  setHandler(releaseSignal, () => {
    released = true;
  });
  setHandler(updateStateQuery, () => ({ items: [...items], handlerRuns: { ...handlerRuns } }));
  await condition(() => finished, '1h');
  return items;
}
