/**
 * TypeScript SDK end-to-end suite. One server (SUNDIAL_TEST_TARGET: sundial by default, or temporal
 * as the oracle), one client and one shared in-process worker for the whole file.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  Connection,
  NamespaceNotFoundError,
  QueryNotRegisteredError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowHandle,
  WorkflowHandleWithFirstExecutionRunId,
  WorkflowNotFoundError,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import {
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  SearchAttributeType,
  TerminatedFailure,
  TypedSearchAttributes,
  defaultPayloadConverter,
  defineSearchAttributeKey,
} from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import * as activities from '../src/activities';
import { Server } from '../src/harness';
import type * as wf from '../src/workflows';
import {
  INT_KEY,
  KW_KEY,
  addSignal,
  addUpdate,
  addWhenReleasedUpdate,
  boomUpdate,
  doneSignal,
  failingQuery,
  finishUpdate,
  itemsQuery,
  releaseSignal,
  stateQuery,
  updateStateQuery,
} from '../src/workflows';

const TQ = 'ts-e2e';
const RESULT_MS = 30_000; // bound on every workflow result
const TEST_MS = 60_000; // bound on every test

const EventType = temporal.api.enums.v1.EventType;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let server: Server;
let connection: Connection;
let client: Client;
let nativeConnection: NativeConnection;
let worker: Worker;
let workerRun: Promise<void>;
const startedIds = new Set<string>();

// ------------------------------------------------------------------ helpers

function wid(name: string): string {
  const id = `ts-${name}-${crypto.randomUUID().slice(0, 8)}`;
  startedIds.add(id);
  return id;
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function within<T>(p: Promise<T>, ms: number, what: string, explain?: () => Promise<string>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const base = `${what}: no answer within ${ms} ms`;
      (explain ? explain().then((e) => `${base}; ${e}`, () => base) : Promise.resolve(base)).then((m) =>
        reject(new Error(m))
      );
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the server says about a workflow that has not finished in time (pending activities' last failures). */
async function explainStuck(handle: WorkflowHandle): Promise<string> {
  const d = await handle.describe();
  const parts = [`status ${d.status.name}`, `historyLength ${d.historyLength}`];
  for (const pa of d.raw.pendingActivities ?? []) {
    parts.push(
      `pending activity ${pa.activityType?.name} attempt ${pa.attempt} lastFailure ${JSON.stringify(pa.lastFailure?.message ?? null)}`
    );
  }
  return parts.join(', ');
}

async function resultOf<T>(handle: WorkflowHandle, ms = RESULT_MS): Promise<T> {
  return within(handle.result() as Promise<T>, ms, `result of ${handle.workflowId}`, () => explainStuck(handle));
}

/** Awaits a promise that must reject, and returns the error. */
async function rejection(p: Promise<unknown>, ms = RESULT_MS, what = 'call'): Promise<unknown> {
  try {
    await within(p, ms, what);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(`${what}: no answer within`)) throw err;
    return err;
  }
  assert.fail(`${what} resolved but was expected to fail`);
}

async function resultFailure(handle: WorkflowHandle, ms = RESULT_MS): Promise<WorkflowFailedError> {
  let err: unknown;
  try {
    await within(handle.result(), ms, `result of ${handle.workflowId}`, () => explainStuck(handle));
  } catch (e) {
    err = e;
  }
  if (err === undefined) assert.fail(`workflow ${handle.workflowId} completed but was expected to fail`);
  if (err instanceof Error && err.message.includes('no answer within')) throw err;
  assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
  return err;
}

function eventName(e: HistoryEvent): string {
  const t = e.eventType as unknown;
  const name = typeof t === 'number' ? EventType[t] : String(t);
  return name.replace(/^EVENT_TYPE_/, '');
}

/** The update ids of a history's accepted and completed update events, in order. */
function acceptedIds(evs: HistoryEvent[]) {
  return evs.filter((e) => eventName(e) === 'WORKFLOW_EXECUTION_UPDATE_ACCEPTED')
    .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId);
}

function completedIds(evs: HistoryEvent[]) {
  return evs.filter((e) => eventName(e) === 'WORKFLOW_EXECUTION_UPDATE_COMPLETED')
    .map((e) => e.workflowExecutionUpdateCompletedEventAttributes?.meta?.updateId);
}

/** Whether `p` settles (either way) within `ms`; `p` itself is left for the caller to await. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  await sleepMs(ms);
  return settled;
}

async function history(handle: WorkflowHandle): Promise<HistoryEvent[]> {
  const h = await within(handle.fetchHistory(), 10_000, `history of ${handle.workflowId}`);
  return h.events ?? [];
}

async function eventNames(handle: WorkflowHandle): Promise<string[]> {
  return (await history(handle)).map(eventName);
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleepMs(100);
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

async function waitForEvent(handle: WorkflowHandle, name: string, ms = 15_000): Promise<void> {
  await waitFor(`${name} in the history of ${handle.workflowId}`, async () => (await eventNames(handle)).includes(name), ms);
}

async function waitStatus(handle: WorkflowHandle, status: string, ms = 15_000) {
  let last = '';
  return waitFor(
    `status ${status} of ${handle.workflowId} (last: ${last})`,
    async () => {
      const d = await handle.describe();
      last = d.status.name;
      return d.status.name === status ? d : undefined;
    },
    ms
  );
}

function payloadText(p: temporal.api.common.v1.IPayload | null | undefined): unknown {
  return p ? defaultPayloadConverter.fromPayload(p) : undefined;
}

function start<W extends (...args: any[]) => any>(
  type: W | string,
  name: string,
  args: unknown[] = [],
  extra: Record<string, unknown> = {}
): Promise<WorkflowHandleWithFirstExecutionRunId<W>> {
  return within(
    client.workflow.start(type as any, { taskQueue: TQ, workflowId: wid(name), args, ...extra }) as Promise<WorkflowHandleWithFirstExecutionRunId<W>>,
    10_000,
    `start ${name}`
  );
}

// ------------------------------------------------------------------ setup

before(async () => {
  Runtime.install({
    logger: new DefaultLogger((process.env.SUNDIAL_TS_LOG as any) || 'ERROR'),
    telemetryOptions: { logging: { filter: process.env.SUNDIAL_TS_CORE_LOG || 'ERROR', forward: {} } },
  });
  server = await new Server().start();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: 'default' });
  nativeConnection = await NativeConnection.connect({ address: server.address });
  worker = await Worker.create({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue: TQ,
    workflowsPath: path.join(__dirname, '..', 'src', 'workflows.js'),
    activities,
    shutdownGraceTime: '2s',
  });
  workerRun = worker.run();
  workerRun.catch(() => undefined);
}, { timeout: 120_000 } as any);

after(async () => {
  // Leave nothing running that could keep the worker busy (best effort, bounded).
  if (client) {
    await Promise.allSettled(
      [...startedIds].map((id) =>
        within(client.workflow.getHandle(id).terminate('suite teardown'), 3_000, `terminate ${id}`).catch(() => undefined)
      )
    );
  }
  if (worker) {
    try {
      worker.shutdown();
    } catch {
      /* already stopping */
    }
    await within(workerRun, 20_000, 'worker shutdown').catch((e) => console.error(String(e)));
  }
  await nativeConnection?.close().catch(() => undefined);
  await connection?.close().catch(() => undefined);
  const log = server?.tailLog(2000);
  await server?.cleanup();
  if (process.env.SUNDIAL_TS_SHOW_SERVER_LOG && log) console.error(log);
  // A safety net if some handle still keeps the loop alive: the results are reported by then.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5_000).unref();
}, { timeout: 60_000 } as any);

// ------------------------------------------------------------------ activities

describe('activities', () => {
  test('hello world: activity with only startToCloseTimeout', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.helloActivity>('helloActivity', 'hello', ['Sundial']);
    assert.equal(await resultOf(h), 'Hello, Sundial!');
    assert.deepEqual(await eventNames(h), [
      'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
      'ACTIVITY_TASK_SCHEDULED', 'ACTIVITY_TASK_STARTED', 'ACTIVITY_TASK_COMPLETED',
      'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED', 'WORKFLOW_EXECUTION_COMPLETED',
    ]);
  });

  describe('timeout combinations', () => {
    // What the worker receives in the activity task, as Temporal fills the missing timeouts in.
    const expected: Record<string, { s2c: number; st2c: number; hb: number | null }> = {
      scheduleToCloseOnly: { s2c: 20_000, st2c: 20_000, hb: null },
      startToCloseOnly: { s2c: 0, st2c: 10_000, hb: null },
      scheduleToCloseAndStartToClose: { s2c: 20_000, st2c: 10_000, hb: null },
      scheduleToStartAndStartToClose: { s2c: 0, st2c: 10_000, hb: null },
      scheduleToStartAndScheduleToClose: { s2c: 20_000, st2c: 20_000, hb: null },
      allThreeTimeouts: { s2c: 20_000, st2c: 10_000, hb: null },
      heartbeatWithBoth: { s2c: 20_000, st2c: 10_000, hb: 3_000 },
      heartbeatWithStartToClose: { s2c: 0, st2c: 10_000, hb: 3_000 },
    };
    for (const [variant, want] of Object.entries(expected)) {
      test(variant, { timeout: TEST_MS }, async () => {
        const h = await start<typeof wf.activityTimeouts>('activityTimeouts', `timeouts-${variant}`, [variant]);
        const r = await resultOf<activities.TimeoutReport>(h);
        assert.equal(r.activityType, 'reportTimeouts');
        assert.equal(r.attempt, 1);
        assert.deepEqual(
          // An absent heartbeat timeout (Temporal sends 0s) means none to the SDK: compare it as null.
          { s2c: r.scheduleToCloseTimeoutMs, st2c: r.startToCloseTimeoutMs, hb: r.heartbeatTimeoutMs || null },
          want
        );
      });
    }
  });

  test('heartbeat details are visible to the next attempt', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.heartbeatRetry>('heartbeatRetry', 'heartbeat', ['hb-marker']);
    const r = await resultOf<{ attempt: number; details: unknown }>(h);
    assert.equal(r.attempt, 2);
    assert.deepEqual(r.details, { marker: 'hb-marker', progress: 41 });
  });

  test('cancelling a heartbeating activity from a CancellationScope', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.cancelActivity>('cancelActivity', 'cancel-activity');
    const key = h.workflowId;
    activities.observations.delete(key);
    const r = await resultOf<{ outcome: string; causeType: string }>(h);
    assert.deepEqual(r, { outcome: 'ActivityFailure', causeType: 'CancelledFailure' });
    const seen = activities.observations.get(key) ?? [];
    assert.equal(seen[0], 'started');
    assert.ok(seen.some((s) => s.startsWith('CancelledFailure')), `activity saw ${JSON.stringify(seen)}`);
    const names = await eventNames(h);
    assert.ok(names.includes('ACTIVITY_TASK_CANCEL_REQUESTED'), names.join(','));
    assert.ok(names.includes('ACTIVITY_TASK_CANCELED'), names.join(','));
  });

  test('retry stops at a non-retryable error type', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.nonRetryableTypes>('nonRetryableTypes', 'non-retryable-type', [3]);
    const r = await resultOf<wf.FailureView>(h);
    assert.equal(r.failureType, 'ActivityFailure');
    assert.equal(r.causeType, 'FatalError');
    assert.equal(r.causeMessage, 'fatal at attempt 3');
    assert.deepEqual(r.causeDetails, [3]);
    const scheduled = (await history(h)).find((e) => eventName(e) === 'ACTIVITY_TASK_SCHEDULED');
    const attrs = scheduled?.activityTaskScheduledEventAttributes;
    assert.deepEqual(attrs?.retryPolicy?.nonRetryableErrorTypes, ['FatalError']);
    assert.equal(attrs?.retryPolicy?.maximumAttempts, 10);
    const started = (await history(h)).find((e) => eventName(e) === 'ACTIVITY_TASK_STARTED');
    assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 3);
  });

  test('retry stops at an ApplicationFailure flagged non-retryable', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.nonRetryableFlag>('nonRetryableFlag', 'non-retryable-flag');
    const r = await resultOf<wf.FailureView>(h);
    assert.equal(r.causeType, 'FlaggedError');
    assert.equal(r.causeNonRetryable, true);
    assert.equal(r.causeMessage, 'flagged at attempt 1');
  });

  test('local activities: success and retry', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.localActivities>('localActivities', 'local', [3]);
    const r = await resultOf<Awaited<ReturnType<typeof wf.localActivities>>>(h);
    assert.deepEqual(r, { greeting: 'Hello, local!', info: { isLocal: true, attempt: 1 }, succeededOn: 3 });
    const names = await eventNames(h);
    assert.equal(names.filter((n) => n === 'MARKER_RECORDED').length, 3, names.join(','));
    assert.ok(!names.includes('ACTIVITY_TASK_SCHEDULED'));
  });

  test('local activity that exhausts its attempts', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.localActivityExhausted>('localActivityExhausted', 'local-exhausted');
    const r = await resultOf<wf.FailureView>(h);
    // The TypeScript SDK hands a local activity's last failure to the workflow as is (not wrapped).
    assert.equal(r.failureType, 'ApplicationFailure');
    assert.equal(r.causeType, 'Flaky');
    assert.equal(r.causeMessage, 'not yet (attempt 2)');
  });
});

// ------------------------------------------------------------------ child workflows

describe('child workflows', () => {
  test('child result', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.parentResult>('parentResult', 'parent-result', ['kid']);
    assert.equal(await resultOf(h), `child greets kid (parent ${h.workflowId})`);
    const child = await client.workflow.getHandle(`${h.workflowId}-child`).describe();
    assert.equal(child.status.name, 'COMPLETED');
    assert.equal(child.type, 'childGreet');
    assert.equal(child.parentExecution?.workflowId, h.workflowId);
    const names = await eventNames(h);
    for (const n of ['START_CHILD_WORKFLOW_EXECUTION_INITIATED', 'CHILD_WORKFLOW_EXECUTION_STARTED', 'CHILD_WORKFLOW_EXECUTION_COMPLETED']) {
      assert.ok(names.includes(n), `${n} missing from ${names.join(',')}`);
    }
  });

  test('child failure propagates with its cause chain', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.parentOfFailingChild>('parentOfFailingChild', 'parent-fail', ['kaboom']);
    const err = await resultFailure(h);
    const childErr = err.cause;
    assert.ok(childErr instanceof ChildWorkflowFailure, `cause is ${String(childErr)}`);
    assert.equal(childErr.execution.workflowId, `${h.workflowId}-child`);
    assert.equal(childErr.workflowType, 'childFails');
    const app = childErr.cause;
    assert.ok(app instanceof ApplicationFailure, `child cause is ${String(app)}`);
    assert.equal(app.type, 'ChildBoom');
    assert.equal(app.message, 'kaboom');
    assert.deepEqual(app.details, ['child-detail', 7]);
    assert.equal((await h.describe()).status.name, 'FAILED');
  });

  test('parent close policy TERMINATE terminates the child', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.parentCloses>('parentCloses', 'pcp-terminate', ['TERMINATE']);
    const childId = await resultOf<string>(h);
    await waitStatus(client.workflow.getHandle(childId), 'TERMINATED');
  });

  test('parent close policy REQUEST_CANCEL cancels the child', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.parentCloses>('parentCloses', 'pcp-cancel', ['REQUEST_CANCEL']);
    const childId = await resultOf<string>(h);
    await waitStatus(client.workflow.getHandle(childId), 'CANCELLED');
  });

  test('parent close policy ABANDON leaves the child running', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.parentCloses>('parentCloses', 'pcp-abandon', ['ABANDON']);
    const childId = await resultOf<string>(h);
    startedIds.add(childId);
    const child = client.workflow.getHandle(childId);
    await sleepMs(500);
    const d = await child.describe();
    assert.equal(d.status.name, 'RUNNING');
    assert.equal(d.parentExecution?.workflowId, h.workflowId);
    await child.signal(releaseSignal);
    assert.equal(await resultOf(child), 'released');
  });
});

// ------------------------------------------------------------------ signals and queries

describe('signals and queries', () => {
  test('signals are delivered in order', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.signalCollector>('signalCollector', 'signals');
    await h.signal(addSignal, 'a');
    await h.signal(addSignal, 'b');
    await h.signal(addSignal, 'c');
    await h.signal(doneSignal);
    assert.deepEqual(await resultOf(h), ['a', 'b', 'c']);
    const names = await eventNames(h);
    assert.equal(names.filter((n) => n === 'WORKFLOW_EXECUTION_SIGNALED').length, 4);
  });

  test('signalWithStart starts a workflow, then signals the running one', { timeout: TEST_MS }, async () => {
    const id = wid('signal-with-start');
    const h1 = await client.workflow.signalWithStart('signalCollector', {
      workflowId: id, taskQueue: TQ, signal: addSignal, signalArgs: ['first'],
    });
    const h2 = await client.workflow.signalWithStart('signalCollector', {
      workflowId: id, taskQueue: TQ, signal: addSignal, signalArgs: ['second'],
    });
    assert.equal(h2.signaledRunId, h1.signaledRunId);
    await h1.signal(doneSignal);
    assert.deepEqual(await resultOf(h1), ['first', 'second']);
    const events = await history(h1);
    assert.equal(eventName(events[0]), 'WORKFLOW_EXECUTION_STARTED');
    assert.equal(eventName(events[1]), 'WORKFLOW_EXECUTION_SIGNALED');
  });

  test('queries: running, with arguments, unknown name, throwing handler, completed', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.queryable>('queryable', 'query');
    assert.deepEqual(await within(h.query(stateQuery, 4), 15_000, 'query state'), { stage: 'waiting', plus: 5 });

    const unknown = await rejection(h.query('no-such-query'), 15_000, 'unknown query');
    assert.ok(unknown instanceof QueryNotRegisteredError, `unknown query gave ${String(unknown)}`);
    assert.match((unknown as Error).message, /no-such-query/);

    const thrown = await rejection(h.query(failingQuery), 15_000, 'throwing query');
    assert.ok(thrown instanceof QueryNotRegisteredError, `throwing query gave ${String(thrown)}`);
    assert.match((thrown as Error).message, /query handler exploded on purpose/);

    await h.signal(doneSignal);
    assert.equal(await resultOf(h), 'finished');
    assert.deepEqual(await within(h.query(stateQuery, 0), 15_000, 'query after completion'), { stage: 'finished', plus: 1 });
  });

  test('query a workflow that collected signals', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.signalCollector>('signalCollector', 'signal-query');
    await h.signal(addSignal, 'x');
    await h.signal(addSignal, 'y');
    assert.deepEqual(await within(h.query(itemsQuery), 15_000, 'items query'), ['x', 'y']);
    await h.signal(doneSignal);
    await resultOf(h);
  });
});

// ------------------------------------------------------------------ timers

describe('timers', () => {
  test('sleep', { timeout: TEST_MS }, async () => {
    const t0 = Date.now();
    const h = await start<typeof wf.timer>('timer', 'timer', [1000]);
    const elapsed = await resultOf<number>(h);
    assert.ok(elapsed >= 1000, `workflow time advanced ${elapsed} ms`);
    assert.ok(Date.now() - t0 >= 1000);
    const events = await history(h);
    const names = events.map(eventName);
    assert.ok(names.includes('TIMER_STARTED') && names.includes('TIMER_FIRED'), names.join(','));
    const ts = events.find((e) => eventName(e) === 'TIMER_STARTED')!.timerStartedEventAttributes!;
    assert.equal(Number(ts.startToFireTimeout?.seconds ?? 0), 1);
  });

  test('timer cancelled through a CancellationScope', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.cancelledTimer>('cancelledTimer', 'timer-cancel');
    assert.equal(await resultOf(h), 'timer cancelled');
    const names = await eventNames(h);
    assert.equal(names.filter((n) => n === 'TIMER_STARTED').length, 2, names.join(','));
    assert.equal(names.filter((n) => n === 'TIMER_FIRED').length, 1, names.join(','));
    assert.equal(names.filter((n) => n === 'TIMER_CANCELED').length, 1, names.join(','));
  });
});

// ------------------------------------------------------------------ continue-as-new

describe('continue-as-new', () => {
  test('continues three times, the handle follows to the final result', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.countdown>('countdown', 'can', [3, []]);
    const firstRun = h.firstExecutionRunId;
    assert.deepEqual(await resultOf(h), { seen: [3, 2, 1, 0], continuedFrom: true });
    const first = client.workflow.getHandle(h.workflowId, firstRun);
    assert.equal((await first.describe()).status.name, 'CONTINUED_AS_NEW');
    const firstNames = await eventNames(first);
    assert.equal(firstNames[firstNames.length - 1], 'WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
    const latest = await client.workflow.getHandle(h.workflowId).describe();
    assert.equal(latest.status.name, 'COMPLETED');
    assert.notEqual(latest.runId, firstRun);
    const started = (await history(client.workflow.getHandle(h.workflowId)))[0].workflowExecutionStartedEventAttributes!;
    assert.equal(started.firstExecutionRunId, firstRun);
    assert.ok(started.continuedExecutionRunId, 'continuedExecutionRunId set on the last run');
  });
});

// ------------------------------------------------------------------ search attributes and memo

describe('search attributes and memo', () => {
  test('typed search attributes at start, upsert from the workflow, describe()', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.searchAttributes>('searchAttributes', 'search-attrs', ['after-upsert'], {
      typedSearchAttributes: new TypedSearchAttributes([
        { key: KW_KEY, value: 'at-start' },
        { key: INT_KEY, value: 7 },
      ]),
    });
    assert.deepEqual(await resultOf(h), { kwBefore: 'at-start', intBefore: 7, kwAfter: 'after-upsert' });
    const d = await h.describe();
    assert.equal(d.typedSearchAttributes.get(KW_KEY), 'after-upsert');
    assert.equal(d.typedSearchAttributes.get(INT_KEY), 7);
    const names = await eventNames(h);
    assert.ok(names.includes('UPSERT_WORKFLOW_SEARCH_ATTRIBUTES'), names.join(','));
  });

  test('legacy searchAttributes option', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.signalCollector>('signalCollector', 'search-attrs-legacy', [], {
      searchAttributes: { CustomKeywordField: ['legacy'], CustomIntField: [11] },
    });
    const d = await h.describe();
    assert.deepEqual(d.searchAttributes.CustomKeywordField, ['legacy']);
    assert.deepEqual(d.searchAttributes.CustomIntField, [11]);
    await h.signal(doneSignal);
    await resultOf(h);
  });

  test('list and count over custom search attributes; an unregistered one is refused', { timeout: TEST_MS }, async () => {
    const tag = `ts-list-${crypto.randomUUID()}`;
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const h = await start<typeof wf.signalCollector>('signalCollector', `list-${n}`, [], {
        typedSearchAttributes: new TypedSearchAttributes([
          { key: KW_KEY, value: tag },
          { key: INT_KEY, value: n },
        ]),
      });
      ids.push(h.workflowId);
      await h.signal(doneSignal);
      await resultOf(h);
    }
    const query = `CustomKeywordField = '${tag}' AND CustomIntField > 1 AND ExecutionStatus = 'Completed'`;
    let listed: string[] = [];
    for (let attempt = 0; attempt < 50 && listed.length === 0; attempt++) {
      listed = [];
      for await (const info of client.workflow.list({ query })) listed.push(info.workflowId);
      if (listed.length === 0) await sleepMs(100);
    }
    assert.deepEqual(listed, [ids[1]]);
    const counted = await client.workflow.count(`CustomKeywordField = '${tag}'`);
    assert.equal(counted.count, 2);
    const rows = [];
    for await (const info of client.workflow.list({ query })) rows.push(info);
    assert.equal(rows[0].typedSearchAttributes.get(INT_KEY), 2);
    await assert.rejects(
      start<typeof wf.signalCollector>('signalCollector', 'list-bad', [], {
        typedSearchAttributes: new TypedSearchAttributes([
          { key: defineSearchAttributeKey('TsNeverRegistered', SearchAttributeType.KEYWORD), value: 'x' },
        ]),
      }),
      (error: any) => {
        // The client wraps the gRPC status; its cause carries the server's message.
        assert.match(String(error.cause?.message), /INVALID_ARGUMENT: Namespace default has no mapping defined for search attribute TsNeverRegistered/);
        return true;
      }
    );
  });

  test('memo at start is visible to the workflow and in describe()', { timeout: TEST_MS }, async () => {
    const memo = { owner: 'alice', tags: ['a', 'b'], n: 3, nested: { ok: true } };
    const h = await start<typeof wf.memoEcho>('memoEcho', 'memo', [], { memo });
    assert.deepEqual(await resultOf(h), memo);
    assert.deepEqual((await h.describe()).memo, memo);
  });

  test('upsertMemo from the workflow', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.memoUpsert>('memoUpsert', 'memo-upsert', ['added'], { memo: { keep: 1, removed: 'soon' } });
    assert.deepEqual(await resultOf(h), { keep: 1, extra: 'added' });
    assert.deepEqual((await h.describe()).memo, { keep: 1, extra: 'added' });
  });
});

// ------------------------------------------------------------------ cancel, terminate, fail

describe('workflow outcomes', () => {
  test('cancel from the client: the workflow sees CancelledFailure and cleans up', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.cancellable>('cancellable', 'cancel');
    activities.observations.delete(h.workflowId);
    await waitForEvent(h, 'TIMER_STARTED');
    await h.cancel();
    const err = await resultFailure(h);
    assert.ok(err.cause instanceof CancelledFailure, `cause is ${String(err.cause)}`);
    assert.deepEqual(activities.observations.get(h.workflowId), ['cleanup']);
    const d = await h.describe();
    assert.equal(d.status.name, 'CANCELLED');
    const names = await eventNames(h);
    assert.ok(names.includes('WORKFLOW_EXECUTION_CANCEL_REQUESTED'), names.join(','));
    assert.equal(names[names.length - 1], 'WORKFLOW_EXECUTION_CANCELED');
  });

  test('terminate', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.cancellable>('cancellable', 'terminate');
    await waitForEvent(h, 'TIMER_STARTED');
    await h.terminate('enough is enough');
    const err = await resultFailure(h);
    assert.ok(err.cause instanceof TerminatedFailure, `cause is ${String(err.cause)}`);
    assert.equal((await h.describe()).status.name, 'TERMINATED');
    const events = await history(h);
    const last = events[events.length - 1];
    assert.equal(eventName(last), 'WORKFLOW_EXECUTION_TERMINATED');
    assert.equal(last.workflowExecutionTerminatedEventAttributes?.reason, 'enough is enough');
  });

  test('failure with ApplicationFailure type and details', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.failsWithDetails>('failsWithDetails', 'fail');
    const err = await resultFailure(h);
    const cause = err.cause;
    assert.ok(cause instanceof ApplicationFailure, `cause is ${String(cause)}`);
    assert.equal(cause.type, 'MyAppError');
    assert.equal(cause.message, 'custom failure');
    assert.equal(cause.nonRetryable, true);
    assert.deepEqual(cause.details, [{ code: 42, reason: 'because' }, 'second']);
    assert.equal((await h.describe()).status.name, 'FAILED');
    const names = await eventNames(h);
    assert.equal(names[names.length - 1], 'WORKFLOW_EXECUTION_FAILED');
  });
});

// ------------------------------------------------------------------ describe and history

describe('describe and history', () => {
  test('describe() fields while running and after completion', { timeout: TEST_MS }, async () => {
    const before = Date.now();
    const h = await start<typeof wf.signalCollector>('signalCollector', 'describe');
    await waitForEvent(h, 'WORKFLOW_TASK_COMPLETED');
    const running = await h.describe();
    assert.equal(running.status.name, 'RUNNING');
    assert.equal(running.type, 'signalCollector');
    assert.equal(running.workflowId, h.workflowId);
    assert.equal(running.runId, h.firstExecutionRunId);
    assert.equal(running.taskQueue, TQ);
    assert.ok(running.startTime instanceof Date);
    assert.ok(Math.abs(running.startTime.getTime() - before) < 60_000, `startTime ${running.startTime.toISOString()}`);
    assert.equal(running.closeTime, undefined);
    assert.ok(running.historyLength >= 4, `historyLength ${running.historyLength}`);
    assert.equal(running.parentExecution, undefined);

    await h.signal(doneSignal);
    await resultOf(h);
    const done = await h.describe();
    assert.equal(done.status.name, 'COMPLETED');
    assert.ok(done.closeTime instanceof Date, 'closeTime set');
    assert.ok(done.closeTime.getTime() >= done.startTime.getTime());
    assert.ok(done.executionTime instanceof Date, 'executionTime set');
    assert.equal(done.historyLength, (await history(h)).length);
    assert.equal(done.raw.executionConfig?.taskQueue?.name, TQ);
  });

  test('workflowInfo() inside the workflow', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.info>('info', 'info', [], { workflowRunTimeout: '1m' });
    const i = await resultOf<Record<string, unknown>>(h);
    assert.deepEqual(i, {
      workflowId: h.workflowId,
      runId: h.firstExecutionRunId,
      workflowType: 'info',
      taskQueue: TQ,
      namespace: 'default',
      attempt: 1,
      firstExecutionRunId: h.firstExecutionRunId,
      historyLength: 3,
      workflowRunTimeoutMs: 60_000,
    });
  });

  test('fetchHistory and paginated history', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.signalCollector>('signalCollector', 'history');
    for (const v of ['1', '2', '3']) await h.signal(addSignal, v);
    await h.signal(doneSignal);
    await resultOf(h);
    const events = await history(h);
    assert.deepEqual(events.map((e) => Number(e.eventId)), events.map((_, i) => i + 1));
    assert.equal(eventName(events[0]), 'WORKFLOW_EXECUTION_STARTED');
    assert.equal(events[0].workflowExecutionStartedEventAttributes?.workflowType?.name, 'signalCollector');
    assert.equal(eventName(events[events.length - 1]), 'WORKFLOW_EXECUTION_COMPLETED');
    const completed = events[events.length - 1].workflowExecutionCompletedEventAttributes;
    assert.deepEqual(payloadText(completed?.result?.payloads?.[0]), ['1', '2', '3']);

    // Page through with a tiny page size.
    const paged: HistoryEvent[] = [];
    const pageSizes: number[] = [];
    let token: Uint8Array | undefined;
    for (let page = 0; page < 100; page++) {
      const resp = await connection.workflowService.getWorkflowExecutionHistory({
        namespace: 'default', execution: { workflowId: h.workflowId }, maximumPageSize: 3, nextPageToken: token,
      });
      const got = resp.history?.events ?? [];
      pageSizes.push(got.length);
      paged.push(...got);
      if (!resp.nextPageToken || resp.nextPageToken.length === 0) break;
      token = resp.nextPageToken;
    }
    assert.ok(pageSizes.length >= 2, `a page size of 3 gave pages of ${JSON.stringify(pageSizes)} events`);
    assert.deepEqual(paged.map((e) => Number(e.eventId)), events.map((e) => Number(e.eventId)));

    const closeOnly = await connection.workflowService.getWorkflowExecutionHistory({
      namespace: 'default', execution: { workflowId: h.workflowId },
      historyEventFilterType: temporal.api.enums.v1.HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
    });
    assert.deepEqual(closeOnly.history?.events?.map(eventName), ['WORKFLOW_EXECUTION_COMPLETED']);
  });
});

// ------------------------------------------------------------------ ids and namespaces

describe('workflow ids and namespaces', () => {
  test('id conflict and id reuse policies', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.signalCollector>('signalCollector', 'id-reuse');
    const id = h.workflowId;
    const dup = await rejection(client.workflow.start('signalCollector', { workflowId: id, taskQueue: TQ }), 10_000, 'duplicate start');
    assert.ok(dup instanceof WorkflowExecutionAlreadyStartedError, `duplicate start gave ${String(dup)}`);
    assert.equal(dup.workflowId, id);
    assert.equal(dup.workflowType, 'signalCollector');

    const existing = await client.workflow.start('signalCollector', { workflowId: id, taskQueue: TQ, workflowIdConflictPolicy: 'USE_EXISTING' });
    assert.equal(existing.firstExecutionRunId, h.firstExecutionRunId);

    await h.signal(doneSignal);
    await resultOf(h);

    const rejected = await rejection(
      client.workflow.start('signalCollector', { workflowId: id, taskQueue: TQ, workflowIdReusePolicy: 'REJECT_DUPLICATE' }),
      10_000, 'REJECT_DUPLICATE start'
    );
    assert.ok(rejected instanceof WorkflowExecutionAlreadyStartedError, `REJECT_DUPLICATE gave ${String(rejected)}`);
    const failedOnly = await rejection(
      client.workflow.start('signalCollector', { workflowId: id, taskQueue: TQ, workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY' }),
      10_000, 'ALLOW_DUPLICATE_FAILED_ONLY start'
    );
    assert.ok(failedOnly instanceof WorkflowExecutionAlreadyStartedError, `ALLOW_DUPLICATE_FAILED_ONLY gave ${String(failedOnly)}`);

    const again = await client.workflow.start('signalCollector', { workflowId: id, taskQueue: TQ, workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
    assert.notEqual(again.firstExecutionRunId, h.firstExecutionRunId);
    assert.equal((await again.describe()).status.name, 'RUNNING');
    await again.signal(doneSignal);
    await resultOf(again);
  });

  test('a namespace that does not exist', { timeout: TEST_MS }, async () => {
    const other = new Client({ connection, namespace: 'ts-e2e-no-such-namespace' });
    const err = await rejection(
      other.workflow.start('signalCollector', { workflowId: wid('bad-namespace'), taskQueue: TQ }),
      10_000, 'start in a missing namespace'
    );
    assert.ok(err instanceof NamespaceNotFoundError, `got ${String(err)}`);
    assert.equal(err.namespace, 'ts-e2e-no-such-namespace');
    const derr = await rejection(
      connection.workflowService.describeNamespace({ namespace: 'ts-e2e-no-such-namespace' }), 10_000, 'describeNamespace'
    );
    assert.equal((derr as { code?: number }).code, 5 /* NOT_FOUND */);
  });
});

// ------------------------------------------------------------------ user metadata

describe('user metadata', () => {
  test('staticSummary and staticDetails at start, read back by describe()', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.signalCollector>('signalCollector', 'metadata-start', [], {
      staticSummary: 'summary from the client',
      staticDetails: 'details from the client\nsecond line',
    });
    const d = await h.describe();
    assert.equal(await d.staticSummary(), 'summary from the client');
    assert.equal(await d.staticDetails(), 'details from the client\nsecond line');
    const started = (await history(h))[0];
    assert.equal(payloadText(started.userMetadata?.summary), 'summary from the client');
    await h.signal(doneSignal);
    await resultOf(h);
  });

  test('timer and activity summaries, current details', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.metadataCommands>('metadataCommands', 'metadata-commands');
    await waitForEvent(h, 'ACTIVITY_TASK_COMPLETED');
    const events = await history(h);
    const timer = events.find((e) => eventName(e) === 'TIMER_STARTED');
    assert.equal(payloadText(timer?.userMetadata?.summary), 'short nap summary');
    const act = events.find((e) => eventName(e) === 'ACTIVITY_TASK_SCHEDULED');
    assert.equal(payloadText(act?.userMetadata?.summary), 'greeting activity summary');
    const meta = await waitFor('current details step 2', async () => {
      const m = await within(h.query<{ currentDetails?: string }>('__temporal_workflow_metadata'), 10_000, 'metadata query');
      return m?.currentDetails === 'current details: step 2' ? m : undefined;
    });
    assert.equal(meta.currentDetails, 'current details: step 2');
    await h.signal(doneSignal);
    assert.equal(await resultOf(h), 'Hello, metadata!');
  });

  test('child staticSummary and staticDetails', { timeout: TEST_MS }, async () => {
    const h = await start<typeof wf.parentWithChildMetadata>('parentWithChildMetadata', 'metadata-child');
    await resultOf(h);
    const child = await client.workflow.getHandle(`${h.workflowId}-child`).describe();
    assert.equal(await child.staticSummary(), 'child summary from the parent');
    assert.equal(await child.staticDetails(), 'child **details** from the parent');
    const initiated = (await history(h)).find((e) => eventName(e) === 'START_CHILD_WORKFLOW_EXECUTION_INITIATED');
    assert.equal(payloadText(initiated?.userMetadata?.summary), 'child summary from the parent');
    const childStarted = (await history(client.workflow.getHandle(`${h.workflowId}-child`)))[0];
    assert.equal(payloadText(childStarted.userMetadata?.summary), 'child summary from the parent');
    assert.equal(payloadText(childStarted.userMetadata?.details), 'child **details** from the parent');
  });
});

// ------------------------------------------------------------------ workflow updates

describe('workflow updates', () => {
  test('workflow updates', { timeout: TEST_MS }, async () => {
    const UPDATE_MS = 20_000; // bound on every update call
    const h = await start<typeof wf.updatable>('updatable', 'updates');
    const state = () => within(h.query(updateStateQuery), 10_000, 'updateState query');
    const bId = `upd-b-${crypto.randomUUID().slice(0, 8)}`;
    const cId = `upd-c-${crypto.randomUUID().slice(0, 8)}`;

    // executeUpdate returns the handler's result (with a generated and with a given update id).
    assert.equal(await within(h.executeUpdate(addUpdate, { args: ['a'] }), UPDATE_MS, 'update add a'), 1);
    assert.equal(await within(h.executeUpdate(addUpdate, { args: ['b'], updateId: bId }), UPDATE_MS, 'update add b'), 2);

    // The validator's rejection reaches the caller and leaves history as it was; the handler did not run.
    const before = await eventNames(h);
    const rejected = await rejection(h.executeUpdate(addUpdate, { args: ['bad'] }), UPDATE_MS, 'update add bad');
    assert.ok(rejected instanceof WorkflowUpdateFailedError, `a rejected update gave ${String(rejected)}`);
    assert.ok(rejected.cause instanceof ApplicationFailure, `rejection cause is ${String(rejected.cause)}`);
    assert.match(rejected.cause.message, /no bad items \(got "bad"\)/);
    assert.deepEqual(await eventNames(h), before, 'a rejected update leaves no trace in history');
    assert.deepEqual(await state(), { items: ['a', 'b'], handlerRuns: { add: 2 } });

    // A handler's ApplicationFailure reaches the caller with its type, message and details.
    const failed = await rejection(h.executeUpdate(boomUpdate, { args: ['kaboom'] }), UPDATE_MS, 'update boom');
    assert.ok(failed instanceof WorkflowUpdateFailedError, `a failing update gave ${String(failed)}`);
    const boom = failed.cause;
    assert.ok(boom instanceof ApplicationFailure, `failure cause is ${String(boom)}`);
    assert.equal(boom.type, 'UpdateBoom');
    assert.equal(boom.message, 'kaboom');
    assert.deepEqual(boom.details, ['boom-detail']);

    // startUpdate returns once the update is accepted; its result comes when the handler finishes.
    const started = await within(
      h.startUpdate(addWhenReleasedUpdate, { args: ['c'], updateId: cId, waitForStage: WorkflowUpdateStage.ACCEPTED }),
      UPDATE_MS,
      'startUpdate addWhenReleased'
    );
    assert.equal(started.updateId, cId);
    assert.equal(started.workflowId, h.workflowId);
    assert.equal(started.workflowRunId, h.firstExecutionRunId);
    const acceptedOnly = await history(h);
    assert.ok(acceptedIds(acceptedOnly).includes(cId), `${cId} not accepted in history`);
    assert.ok(!completedIds(acceptedOnly).includes(cId), `${cId} completed before the release signal`);
    const pending = started.result();
    assert.equal(await settlesWithin(pending, 300), false, 'the update result came before the handler was released');
    await h.signal(releaseSignal);
    assert.equal(await within(pending, UPDATE_MS, 'result of addWhenReleased'), 3);

    // The same update id again gives the first outcome (even with other args) and does not run the handler.
    assert.equal(await within(h.executeUpdate(addUpdate, { args: ['b-again'], updateId: bId }), UPDATE_MS, 'update add b again'), 2);
    assert.deepEqual(await state(), { items: ['a', 'b', 'c'], handlerRuns: { add: 2, boom: 1, addWhenReleased: 1 } });

    // An update that lets the main function return.
    assert.equal(await within(h.executeUpdate(finishUpdate), UPDATE_MS, 'update finish'), 'finished');
    assert.deepEqual(await resultOf(h), ['a', 'b', 'c']);

    const events = await history(h);
    const names = events.map(eventName);
    assert.equal(names[names.length - 1], 'WORKFLOW_EXECUTION_COMPLETED');
    assert.equal(names.filter((n) => n === 'WORKFLOW_EXECUTION_UPDATE_ACCEPTED').length, 5, names.join(','));
    assert.equal(names.filter((n) => n === 'WORKFLOW_EXECUTION_UPDATE_COMPLETED').length, 5, names.join(','));
    const accepted = events.filter((e) => eventName(e) === 'WORKFLOW_EXECUTION_UPDATE_ACCEPTED');
    assert.deepEqual(
      accepted.map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name),
      ['add', 'add', 'boom', 'addWhenReleased', 'finish']
    );
    assert.equal(acceptedIds(events)[1], bId);
    assert.equal(acceptedIds(events)[3], cId);
    // Each completion points at its acceptance; the failing one carries the handler's failure.
    for (const c of events.filter((e) => eventName(e) === 'WORKFLOW_EXECUTION_UPDATE_COMPLETED')) {
      const attrs = c.workflowExecutionUpdateCompletedEventAttributes;
      const acc = events.find((e) => Number(e.eventId) === Number(attrs?.acceptedEventId));
      assert.equal(acc && eventName(acc), 'WORKFLOW_EXECUTION_UPDATE_ACCEPTED', `acceptedEventId ${attrs?.acceptedEventId}`);
      assert.equal(acc?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId, attrs?.meta?.updateId);
      assert.ok(Number(c.eventId) > Number(acc?.eventId));
      const isBoom = acc?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'boom';
      assert.equal(attrs?.outcome?.failure?.applicationFailureInfo?.type ?? null, isBoom ? 'UpdateBoom' : null);
      assert.equal(!!attrs?.outcome?.success, !isBoom);
    }

    // After the run closed: a completed update's outcome can still be fetched, by handle and by id.
    assert.equal(await within(h.getUpdateHandle<number>(bId).result(), UPDATE_MS, 'poll update b after close'), 2);
    assert.equal(await within(h.executeUpdate(addUpdate, { args: ['b'], updateId: bId }), UPDATE_MS, 'update add b after close'), 2);
    // A new update on the closed run is refused.
    const closed = await rejection(h.executeUpdate(addUpdate, { args: ['z'] }), UPDATE_MS, 'update on a closed run');
    assert.ok(closed instanceof WorkflowNotFoundError, `an update on a closed run gave ${String(closed)}`);
    assert.equal(closed.message, 'workflow execution already completed');
    assert.equal(closed.workflowId, h.workflowId);
    assert.deepEqual(await eventNames(h), names, 'refused updates leave the closed history unchanged');
  });
});

// ------------------------------------------------------------------ update with start

describe('update with start', () => {
  test('update with start', { timeout: TEST_MS }, async () => {
    const UPDATE_MS = 20_000; // bound on every update call
    const id = wid('update-with-start');
    const tag = crypto.randomUUID().slice(0, 8);
    const [aId, bId, cId, finishId] = ['a', 'b', 'c', 'finish'].map((n) => `uws-${n}-${tag}`);
    const op = (workflowId: string, workflowIdConflictPolicy: 'USE_EXISTING' | 'FAIL') =>
      new WithStartWorkflowOperation<typeof wf.updatable>('updatable', { workflowId, taskQueue: TQ, workflowIdConflictPolicy });
    const handleOf = (o: WithStartWorkflowOperation<typeof wf.updatable>, what: string) =>
      within(o.workflowHandle(), UPDATE_MS, `workflowHandle() of ${what}`);

    // A new workflow id with USE_EXISTING: the workflow is started and the update's result comes back.
    const op1 = op(id, 'USE_EXISTING');
    assert.equal(
      await within(client.workflow.executeUpdateWithStart(addUpdate, { args: ['a'], updateId: aId, startWorkflowOperation: op1 }), UPDATE_MS, 'update-with-start a'),
      1
    );
    const h = await handleOf(op1, 'the first update-with-start');
    assert.equal(h.workflowId, id);
    const state = () => within(h.query(updateStateQuery), 10_000, 'updateState query');
    const d1 = await h.describe();
    assert.equal(d1.status.name, 'RUNNING');
    assert.equal(d1.type, 'updatable');
    assert.equal(d1.taskQueue, TQ);
    const runId = d1.runId;
    // The update rides on the first workflow task. Between its acceptance and its completion sits the
    // timer of the main function's condition(..., '1h'), in the order the worker sent messages and commands.
    const first = await history(h);
    assert.deepEqual(first.map(eventName), [
      'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
      'WORKFLOW_EXECUTION_UPDATE_ACCEPTED', 'TIMER_STARTED', 'WORKFLOW_EXECUTION_UPDATE_COMPLETED',
    ]);
    assert.equal(Number(first[5].timerStartedEventAttributes?.workflowTaskCompletedEventId), Number(first[3].eventId));
    const startedAttrs = first[0].workflowExecutionStartedEventAttributes;
    assert.equal(startedAttrs?.workflowType?.name, 'updatable');
    assert.equal(startedAttrs?.taskQueue?.name, TQ);
    assert.equal(startedAttrs?.originalExecutionRunId, runId);
    assert.equal(startedAttrs?.firstExecutionRunId, runId);
    const acc1 = first[4].workflowExecutionUpdateAcceptedEventAttributes;
    assert.equal(acc1?.acceptedRequest?.meta?.updateId, aId);
    assert.equal(acc1?.acceptedRequest?.input?.name, 'add');
    assert.deepEqual((acc1?.acceptedRequest?.input?.args?.payloads ?? []).map(payloadText), ['a']);
    const done1 = first[6].workflowExecutionUpdateCompletedEventAttributes;
    assert.equal(done1?.meta?.updateId, aId);
    assert.equal(Number(done1?.acceptedEventId), Number(first[4].eventId));
    assert.deepEqual((done1?.outcome?.success?.payloads ?? []).map(payloadText), [1]);

    // Again on the running workflow with USE_EXISTING: the same run, the update applied there.
    const op2 = op(id, 'USE_EXISTING');
    assert.equal(
      await within(client.workflow.executeUpdateWithStart(addUpdate, { args: ['b'], updateId: bId, startWorkflowOperation: op2 }), UPDATE_MS, 'update-with-start b'),
      2
    );
    const h2 = await handleOf(op2, 'update-with-start on the running workflow');
    assert.equal(h2.workflowId, id);
    assert.equal((await h2.describe()).runId, runId);
    assert.deepEqual(await state(), { items: ['a', 'b'], handlerRuns: { add: 2 } });

    // The same update id again gives the stored outcome (even with other args); the handler does not run again.
    const op3 = op(id, 'USE_EXISTING');
    assert.equal(
      await within(client.workflow.executeUpdateWithStart(addUpdate, { args: ['b-again'], updateId: bId, startWorkflowOperation: op3 }), UPDATE_MS, 'update-with-start b again'),
      2
    );
    assert.equal((await (await handleOf(op3, 'update-with-start b again')).describe()).runId, runId);
    assert.deepEqual(await state(), { items: ['a', 'b'], handlerRuns: { add: 2 } });

    // What the server answers to that repeat, field by field (what the SDK reads from the response).
    const raw = await within(
      client.workflowService.executeMultiOperation({
        namespace: 'default',
        operations: [
          {
            startWorkflow: {
              namespace: 'default',
              workflowId: id,
              workflowType: { name: 'updatable' },
              taskQueue: { name: TQ },
              requestId: crypto.randomUUID(),
              identity: 'ts-e2e raw',
              workflowIdConflictPolicy: temporal.api.enums.v1.WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
            },
          },
          {
            updateWorkflow: {
              namespace: 'default',
              workflowExecution: { workflowId: id },
              request: {
                meta: { updateId: bId, identity: 'ts-e2e raw' },
                input: { name: 'add', args: { payloads: [defaultPayloadConverter.toPayload('b-raw')] } },
              },
              waitPolicy: { lifecycleStage: temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED },
            },
          },
        ],
      }),
      UPDATE_MS,
      'raw ExecuteMultiOperation'
    );
    assert.equal(raw.responses?.length, 2);
    const rawStart = raw.responses?.[0]?.startWorkflow;
    assert.equal(rawStart?.runId, runId);
    assert.equal(rawStart?.started ?? false, false, 'USE_EXISTING on a running workflow reports started=false');
    const rawUpdate = raw.responses?.[1]?.updateWorkflow;
    assert.equal(rawUpdate?.updateRef?.workflowExecution?.workflowId, id);
    assert.equal(rawUpdate?.updateRef?.workflowExecution?.runId, runId);
    assert.equal(rawUpdate?.updateRef?.updateId, bId);
    assert.equal(
      rawUpdate?.stage,
      temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
    );
    assert.deepEqual((rawUpdate?.outcome?.success?.payloads ?? []).map(payloadText), [2]);

    // FAIL on the running workflow: WorkflowExecutionAlreadyStartedError, from the call and from workflowHandle().
    const beforeFail = await eventNames(h);
    const op4 = op(id, 'FAIL');
    const dup = await rejection(
      client.workflow.executeUpdateWithStart(addUpdate, { args: ['x'], startWorkflowOperation: op4 }), UPDATE_MS, 'update-with-start FAIL'
    );
    assert.ok(dup instanceof WorkflowExecutionAlreadyStartedError, `FAIL on a running workflow gave ${String(dup)}`);
    assert.equal(dup.workflowId, id);
    assert.equal(dup.workflowType, 'updatable');
    const dupHandle = await rejection(op4.workflowHandle(), UPDATE_MS, 'workflowHandle() after FAIL');
    assert.ok(dupHandle instanceof WorkflowExecutionAlreadyStartedError, `workflowHandle() after FAIL gave ${String(dupHandle)}`);
    assert.deepEqual(await eventNames(h), beforeFail, 'a refused update-with-start leaves history unchanged');
    assert.deepEqual(await state(), { items: ['a', 'b'], handlerRuns: { add: 2 } });

    // startUpdateWithStart returns once the update is accepted; its result comes when the handler finishes.
    const op5 = op(id, 'USE_EXISTING');
    const started = await within(
      client.workflow.startUpdateWithStart(addWhenReleasedUpdate, {
        args: ['c'], updateId: cId, waitForStage: WorkflowUpdateStage.ACCEPTED, startWorkflowOperation: op5,
      }),
      UPDATE_MS,
      'startUpdateWithStart addWhenReleased'
    );
    assert.equal(started.updateId, cId);
    assert.equal(started.workflowId, id);
    assert.equal(started.workflowRunId, runId);
    assert.equal((await (await handleOf(op5, 'startUpdateWithStart')).describe()).runId, runId);
    const acceptedOnly = await history(h);
    assert.ok(acceptedIds(acceptedOnly).includes(cId), `${cId} not accepted in history`);
    assert.ok(!completedIds(acceptedOnly).includes(cId), `${cId} completed before the release signal`);
    const pending = started.result();
    assert.equal(await settlesWithin(pending, 300), false, 'the update result came before the handler was released');
    await h.signal(releaseSignal);
    assert.equal(await within(pending, UPDATE_MS, 'result of addWhenReleased'), 3);

    // The validator's rejection reaches the caller; the workflow (already there) is untouched.
    const beforeBad = await eventNames(h);
    const op6 = op(id, 'USE_EXISTING');
    const rejected = await rejection(
      client.workflow.executeUpdateWithStart(addUpdate, { args: ['bad'], startWorkflowOperation: op6 }), UPDATE_MS, 'update-with-start bad'
    );
    assert.ok(rejected instanceof WorkflowUpdateFailedError, `a rejected update-with-start gave ${String(rejected)}`);
    assert.ok(rejected.cause instanceof ApplicationFailure, `rejection cause is ${String(rejected.cause)}`);
    assert.match(rejected.cause.message, /no bad items \(got "bad"\)/);
    assert.equal((await (await handleOf(op6, 'rejected update-with-start')).describe()).runId, runId);
    assert.deepEqual(await eventNames(h), beforeBad, 'a rejected update leaves no trace in history');

    // A rejected update on a new workflow id: the workflow is started all the same, with no update in history.
    const freshId = wid('update-with-start-rejected');
    const op7 = op(freshId, 'USE_EXISTING');
    const freshRejected = await rejection(
      client.workflow.executeUpdateWithStart(addUpdate, { args: ['bad'], startWorkflowOperation: op7 }), UPDATE_MS, 'update-with-start bad on a new id'
    );
    assert.ok(freshRejected instanceof WorkflowUpdateFailedError, `a rejected update-with-start on a new id gave ${String(freshRejected)}`);
    assert.ok(freshRejected.cause instanceof ApplicationFailure, `rejection cause is ${String(freshRejected.cause)}`);
    assert.match(freshRejected.cause.message, /no bad items \(got "bad"\)/);
    const fresh = await handleOf(op7, 'rejected update-with-start on a new id');
    assert.equal(fresh.workflowId, freshId);
    assert.equal((await fresh.describe()).status.name, 'RUNNING');
    assert.deepEqual(await eventNames(fresh), [
      'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED', 'TIMER_STARTED',
    ]);
    assert.equal(await within(fresh.executeUpdate(finishUpdate), UPDATE_MS, 'finish the rejected-update workflow'), 'finished');
    assert.deepEqual(await resultOf(fresh), []);

    // Finish through update-with-start too, and check the workflow's result and the whole history.
    const op8 = op(id, 'USE_EXISTING');
    assert.equal(
      await within(client.workflow.executeUpdateWithStart(finishUpdate, { updateId: finishId, startWorkflowOperation: op8 }), UPDATE_MS, 'update-with-start finish'),
      'finished'
    );
    assert.deepEqual(await resultOf(h), ['a', 'b', 'c']);
    assert.deepEqual(await state(), { items: ['a', 'b', 'c'], handlerRuns: { add: 2, addWhenReleased: 1, finish: 1 } });
    const events = await history(h);
    const names = events.map(eventName);
    assert.equal(names[names.length - 1], 'WORKFLOW_EXECUTION_COMPLETED');
    assert.equal(names.filter((n) => n === 'WORKFLOW_EXECUTION_STARTED').length, 1, names.join(','));
    assert.deepEqual(acceptedIds(events), [aId, bId, cId, finishId]);
    assert.deepEqual(completedIds(events).slice().sort(), [aId, bId, cId, finishId].sort());
    const d = await h.describe();
    assert.equal(d.status.name, 'COMPLETED');
    assert.equal(d.runId, runId);
  });
});
