package sdkgo

// Go SDK end-to-end suite for issue 2 point 2. Runs against SUNDIAL_TEST_TARGET (default sundial).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"
)

const tq = "go-e2e"
const extraNS = "sdk-go-extra"

var (
	srv *testServer
	cl  client.Client
)

func TestMain(m *testing.M) {
	var err error
	srv, err = startServer(extraNS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start server:", err)
		os.Exit(1)
	}
	cl, err = client.Dial(client.Options{HostPort: srv.addr, Logger: quietLogger{},
		ContextPropagators: []workflow.ContextPropagator{headerPropagator{}}})
	if err != nil {
		srv.stop()
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	w := worker.New(cl, tq, worker.Options{})
	for _, wf := range []interface{}{HelloWorkflow, WaitSignalWorkflow, SleepWorkflow, TimerCancelWorkflow, InfoWorkflow,
		TaskFailOnceWorkflow, ActivityScenarioWorkflow, ChildWorkflow, ParentWorkflow, ExternalWorkflow,
		ContinueAsNewWorkflow, MarkersWorkflow, UpsertWorkflow, ManySignalsWorkflow, UpdatesWorkflow} {
		w.RegisterWorkflow(wf)
	}
	for _, a := range []interface{}{Hello, Flaky, AlwaysFail, Sleepy, HeartbeatThenStall, HeartbeatUntilCancelled} {
		w.RegisterActivity(a)
	}
	if err := w.Start(); err != nil {
		srv.stop()
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	code := m.Run()
	w.Stop()
	cl.Close()
	srv.stop()
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wid(t *testing.T) string {
	return fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
}

func opts(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: tq}
}

func history(t *testing.T, id, runID string) []*historypb.HistoryEvent {
	t.Helper()
	it := cl.GetWorkflowHistory(ctxT(t), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var evs []*historypb.HistoryEvent
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		evs = append(evs, e)
	}
	return evs
}

func types(evs []*historypb.HistoryEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, strings.TrimPrefix(enumspb.EventType_name[int32(e.EventType)], "EVENT_TYPE_"))
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func describeStatus(t *testing.T, id, runID string) enumspb.WorkflowExecutionStatus {
	d, err := cl.DescribeWorkflowExecution(ctxT(t), id, runID)
	must(t, err)
	return d.WorkflowExecutionInfo.Status
}

func waitStatus(t *testing.T, id string, st enumspb.WorkflowExecutionStatus) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if describeStatus(t, id, "") == st {
			return
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("%s never reached %v (now %v)", id, st, describeStatus(t, id, ""))
}

// ------------------------------------------------------------------ start

func TestStartAndResult(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), HelloWorkflow, "Sundial")
	must(t, err)
	var r string
	must(t, run.Get(ctx, &r))
	if r != "Hello, Sundial!" {
		t.Fatalf("result %q", r)
	}
	got := strings.Join(types(history(t, id, run.GetRunID())), ",")
	want := "WORKFLOW_EXECUTION_STARTED,WORKFLOW_TASK_SCHEDULED,WORKFLOW_TASK_STARTED,WORKFLOW_TASK_COMPLETED," +
		"ACTIVITY_TASK_SCHEDULED,ACTIVITY_TASK_STARTED,ACTIVITY_TASK_COMPLETED,WORKFLOW_TASK_SCHEDULED," +
		"WORKFLOW_TASK_STARTED,WORKFLOW_TASK_COMPLETED,WORKFLOW_EXECUTION_COMPLETED"
	if got != want {
		t.Fatalf("history\n got %s\nwant %s", got, want)
	}
}

func TestAlreadyStartedAndConflictPolicies(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	o := opts(id)
	o.WorkflowExecutionErrorWhenAlreadyStarted = true
	run1, err := cl.ExecuteWorkflow(ctx, o, WaitSignalWorkflow, 0)
	must(t, err)
	_, err = cl.ExecuteWorkflow(ctx, o, WaitSignalWorkflow, 0)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if !errors.As(err, &already) {
		t.Fatalf("want WorkflowExecutionAlreadyStarted, got %T %v", err, err)
	}
	if already.RunId != run1.GetRunID() || already.StartRequestId == "" {
		t.Fatalf("details: run %q (want %q), request %q", already.RunId, run1.GetRunID(), already.StartRequestId)
	}
	// USE_EXISTING returns the same run.
	o2 := opts(id)
	o2.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	run2, err := cl.ExecuteWorkflow(ctx, o2, WaitSignalWorkflow, 0)
	must(t, err)
	if run2.GetRunID() != run1.GetRunID() {
		t.Fatalf("USE_EXISTING gave a new run")
	}
	// TERMINATE_EXISTING terminates it and starts a new run.
	o3 := opts(id)
	o3.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
	run3, err := cl.ExecuteWorkflow(ctx, o3, WaitSignalWorkflow, 0)
	must(t, err)
	if run3.GetRunID() == run1.GetRunID() {
		t.Fatalf("TERMINATE_EXISTING reused the run")
	}
	if st := describeStatus(t, id, run1.GetRunID()); st != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		t.Fatalf("first run status %v", st)
	}
	must(t, cl.SignalWorkflow(ctx, id, "", "finish", nil))
	must(t, run3.Get(ctx, nil))
	// Closed COMPLETED + REJECT_DUPLICATE → already started.
	o4 := opts(id)
	o4.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	o4.WorkflowExecutionErrorWhenAlreadyStarted = true
	_, err = cl.ExecuteWorkflow(ctx, o4, WaitSignalWorkflow, 0)
	if !errors.As(err, &already) {
		t.Fatalf("REJECT_DUPLICATE: got %v", err)
	}
}

func TestTimeoutsMemoHeaderRetry(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	// execution timeout
	o := opts(id + "-exec")
	o.WorkflowExecutionTimeout = 2 * time.Second
	run, err := cl.ExecuteWorkflow(ctx, o, SleepWorkflow, time.Minute)
	must(t, err)
	err = run.Get(ctx, nil)
	var te *temporal.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("want timeout, got %v", err)
	}
	if st := describeStatus(t, id+"-exec", ""); st != enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT {
		t.Fatalf("status %v", st)
	}
	// run timeout, memo, header, retry policy (fails twice, succeeds on attempt 3)
	o = opts(id)
	o.WorkflowRunTimeout = 30 * time.Second
	o.Memo = map[string]interface{}{"k": "memo-value"}
	o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 5}
	hctx := context.WithValue(ctx, ctxKey{}, "header-value-42")
	run, err = cl.ExecuteWorkflow(hctx, o, InfoWorkflow, int32(3))
	must(t, err)
	firstRun := run.GetRunID()
	var r infoResult
	must(t, run.Get(ctx, &r))
	if r.Attempt != 3 || r.Header != "header-value-42" || r.Memo != "memo-value" || r.RunTO != 30*time.Second {
		t.Fatalf("info %+v", r)
	}
	evs := history(t, id, firstRun)
	last := evs[len(evs)-1]
	if last.EventType != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED ||
		last.GetWorkflowExecutionFailedEventAttributes().NewExecutionRunId == "" {
		t.Fatalf("first run should fail with a retry link, got %v", last.EventType)
	}
}

func TestDescribeTerminateCancel(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), WaitSignalWorkflow, 0)
	must(t, err)
	d, err := cl.DescribeWorkflowExecution(ctx, id, "")
	must(t, err)
	info := d.WorkflowExecutionInfo
	if info.Type.Name != "WaitSignalWorkflow" || info.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING ||
		info.Execution.RunId != run.GetRunID() || info.TaskQueue != tq {
		t.Fatalf("describe %+v", info)
	}
	must(t, cl.TerminateWorkflow(ctx, id, "", "enough"))
	var tErr *temporal.TerminatedError
	if err := run.Get(ctx, nil); !errors.As(err, &tErr) {
		t.Fatalf("want terminated, got %v", err)
	}
	evs := history(t, id, "")
	if a := evs[len(evs)-1].GetWorkflowExecutionTerminatedEventAttributes(); a == nil || a.Reason != "enough" {
		t.Fatalf("last event %v", evs[len(evs)-1])
	}
	var nf *serviceerror.NotFound
	if err := cl.SignalWorkflow(ctx, id, "", "finish", nil); !errors.As(err, &nf) {
		t.Fatalf("signal closed: %v", err)
	}
	// cancel
	run, err = cl.ExecuteWorkflow(ctx, opts(id+"-c"), WaitSignalWorkflow, 0)
	must(t, err)
	must(t, cl.CancelWorkflow(ctx, id+"-c", ""))
	var cErr *temporal.CanceledError
	if err := run.Get(ctx, nil); !errors.As(err, &cErr) {
		t.Fatalf("want canceled, got %v", err)
	}
	ty := types(history(t, id+"-c", ""))
	if !has(ty, "WORKFLOW_EXECUTION_CANCEL_REQUESTED") || ty[len(ty)-1] != "WORKFLOW_EXECUTION_CANCELED" {
		t.Fatalf("history %v", ty)
	}
	must(t, cl.CancelWorkflow(ctx, id+"-c", "")) // closed: OK no-op
}

func TestWorkflowTaskFailureRetried(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), TaskFailOnceWorkflow, id)
	must(t, err)
	var r string
	must(t, run.Get(ctx, &r))
	ty := types(history(t, id, ""))
	if r != "recovered" || len(ty) < 5 || ty[3] != "WORKFLOW_TASK_FAILED" || ty[4] != "WORKFLOW_TASK_SCHEDULED" {
		t.Fatalf("result %q history %v", r, ty)
	}
}

// ------------------------------------------------------------------ activities

func runActivity(t *testing.T, scenario string) (actOutcome, []*historypb.HistoryEvent, time.Duration) {
	ctx := ctxT(t)
	id := wid(t)
	t0 := time.Now()
	run, err := cl.ExecuteWorkflow(ctx, opts(id), ActivityScenarioWorkflow, scenario)
	must(t, err)
	var o actOutcome
	must(t, run.Get(ctx, &o))
	return o, history(t, id, ""), time.Since(t0)
}

func startedAttempt(t *testing.T, evs []*historypb.HistoryEvent) int32 {
	for _, e := range evs {
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil {
			return a.Attempt
		}
	}
	return 0
}

func TestActivityRetryBackoff(t *testing.T) {
	o, evs, el := runActivity(t, "retry")
	if o.OK != "ok at attempt 3" || startedAttempt(t, evs) != 3 || el < 850*time.Millisecond {
		t.Fatalf("%+v attempt=%d elapsed=%v", o, startedAttempt(t, evs), el)
	}
}

func TestActivityMaxAttemptsAndNonRetryable(t *testing.T) {
	o, evs, _ := runActivity(t, "max_attempts")
	if o.RetryState != "MaximumAttemptsReached" || o.AppType != "Boom" || startedAttempt(t, evs) != 3 {
		t.Fatalf("max attempts: %+v attempt=%d", o, startedAttempt(t, evs))
	}
	o, evs, _ = runActivity(t, "non_retryable")
	if o.RetryState != "NonRetryableFailure" || o.AppType != "Fatal" || startedAttempt(t, evs) != 1 {
		t.Fatalf("non-retryable: %+v", o)
	}
}

func TestActivityTimeouts(t *testing.T) {
	for scen, want := range map[string]string{
		"schedule_to_close": "ScheduleToClose", "start_to_close": "StartToClose", "schedule_to_start": "ScheduleToStart",
	} {
		o, evs, el := runActivity(t, scen)
		if o.TimeoutType != want || el > 10*time.Second {
			t.Fatalf("%s: %+v elapsed %v", scen, o, el)
		}
		if !has(types(evs), "ACTIVITY_TASK_TIMED_OUT") {
			t.Fatalf("%s: no timed-out event", scen)
		}
	}
}

func TestActivityHeartbeatTimeoutDetails(t *testing.T) {
	o, evs, _ := runActivity(t, "heartbeat_timeout")
	if o.TimeoutType != "Heartbeat" || o.HBDetails != "hb-2(prev=hb-1(prev=))" || startedAttempt(t, evs) != 2 {
		t.Fatalf("%+v attempt=%d", o, startedAttempt(t, evs))
	}
}

func TestActivityCancelViaHeartbeat(t *testing.T) {
	o, evs, el := runActivity(t, "cancel")
	ty := types(evs)
	if !o.Canceled || !has(ty, "ACTIVITY_TASK_CANCEL_REQUESTED") || !has(ty, "ACTIVITY_TASK_CANCELED") || el > 15*time.Second {
		t.Fatalf("%+v %v", o, ty)
	}
}

// ------------------------------------------------------------------ timers, signals, queries

func TestTimers(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	t0 := time.Now()
	run, err := cl.ExecuteWorkflow(ctx, opts(id), SleepWorkflow, time.Second)
	must(t, err)
	must(t, run.Get(ctx, nil))
	if ty := types(history(t, id, "")); time.Since(t0) < 950*time.Millisecond || ty[4] != "TIMER_STARTED" || ty[5] != "TIMER_FIRED" {
		t.Fatalf("timer: %v", ty)
	}
	run, err = cl.ExecuteWorkflow(ctx, opts(id+"-c"), TimerCancelWorkflow)
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	must(t, cl.SignalWorkflow(ctx, id+"-c", "", "proceed", nil))
	var r string
	must(t, run.Get(ctx, &r))
	ty := types(history(t, id+"-c", ""))
	if r != "signalled before timer" || !has(ty, "TIMER_CANCELED") || has(ty, "TIMER_FIRED") {
		t.Fatalf("%q %v", r, ty)
	}
}

func TestSignalsQueriesSignalWithStart(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.SignalWithStartWorkflow(ctx, id, "add", "first", opts(id), WaitSignalWorkflow, 3)
	must(t, err)
	run2, err := cl.SignalWithStartWorkflow(ctx, id, "add", "second", opts(id), WaitSignalWorkflow, 3)
	must(t, err)
	if run2.GetRunID() != run.GetRunID() {
		t.Fatalf("signal-with-start started a second run")
	}
	var items []string
	for i := 0; i < 50; i++ {
		v, err := cl.QueryWorkflow(ctx, id, "", "get_items")
		must(t, err)
		must(t, v.Get(&items))
		if len(items) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Join(items, ",") != "first,second" {
		t.Fatalf("query %v", items)
	}
	if _, err := cl.QueryWorkflow(ctx, id, "", "no_such_query"); err == nil {
		t.Fatalf("unknown query succeeded")
	}
	must(t, cl.SignalWorkflow(ctx, id, "", "add", "third"))
	must(t, run.Get(ctx, &items))
	if strings.Join(items, ",") != "first,second,third" {
		t.Fatalf("result %v", items)
	}
	ty := types(history(t, id, ""))
	if ty[0] != "WORKFLOW_EXECUTION_STARTED" || ty[1] != "WORKFLOW_EXECUTION_SIGNALED" || ty[2] != "WORKFLOW_TASK_SCHEDULED" {
		t.Fatalf("signal-with-start history %v", ty)
	}
	v, err := cl.QueryWorkflow(ctx, id, "", "get_items") // closed workflow
	must(t, err)
	must(t, v.Get(&items))
	if len(items) != 3 {
		t.Fatalf("query after close %v", items)
	}
}

func TestSignalAndCancelExternal(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	target, err := cl.ExecuteWorkflow(ctx, opts(id+"-t1"), WaitSignalWorkflow, 1)
	must(t, err)
	run, err := cl.ExecuteWorkflow(ctx, opts(id+"-s"), ExternalWorkflow, "signal", id+"-t1")
	must(t, err)
	var r string
	must(t, run.Get(ctx, &r))
	var items []string
	must(t, target.Get(ctx, &items))
	if r != "sent" || len(items) != 1 || items[0] != "from-external" {
		t.Fatalf("signal external %q %v", r, items)
	}
	if ty := types(history(t, id+"-s", "")); !has(ty, "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED") {
		t.Fatalf("%v", ty)
	}
	target, err = cl.ExecuteWorkflow(ctx, opts(id+"-t2"), WaitSignalWorkflow, 0)
	must(t, err)
	run, err = cl.ExecuteWorkflow(ctx, opts(id+"-c"), ExternalWorkflow, "cancel", id+"-t2")
	must(t, err)
	must(t, run.Get(ctx, &r))
	var cErr *temporal.CanceledError
	if err := target.Get(ctx, nil); r != "sent" || !errors.As(err, &cErr) {
		t.Fatalf("cancel external %q %v", r, err)
	}
	if ty := types(history(t, id+"-c", "")); !has(ty, "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED") {
		t.Fatalf("%v", ty)
	}
	run, err = cl.ExecuteWorkflow(ctx, opts(id+"-m"), ExternalWorkflow, "signal", id+"-missing")
	must(t, err)
	must(t, run.Get(ctx, &r))
	if !strings.HasPrefix(r, "failed") || !has(types(history(t, id+"-m", "")), "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED") {
		t.Fatalf("signal to missing: %q", r)
	}
}

// ------------------------------------------------------------------ updates

// updateIDs lists, in history order, the update IDs of the history's UPDATE_ACCEPTED or
// UPDATE_COMPLETED events (ty picks which).
func updateIDs(evs []*historypb.HistoryEvent, ty enumspb.EventType) []string {
	out := []string{}
	for _, e := range evs {
		switch {
		case e.EventType != ty:
		case ty == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			out = append(out, e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetMeta().GetUpdateId())
		case ty == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			out = append(out, e.GetWorkflowExecutionUpdateCompletedEventAttributes().GetMeta().GetUpdateId())
		}
	}
	return out
}

func TestWorkflowUpdates(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), UpdatesWorkflow)
	must(t, err)
	rid := run.GetRunID()
	// Each call has its own bound, well inside the test's.
	bounded := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		t.Cleanup(cancel)
		return c
	}
	update := func(updateID, name string, stage client.WorkflowUpdateStage, args ...interface{}) (client.WorkflowUpdateHandle, error) {
		return cl.UpdateWorkflow(bounded(), client.UpdateWorkflowOptions{WorkflowID: id, RunID: rid,
			UpdateID: updateID, UpdateName: name, Args: args, WaitForStage: stage})
	}
	addCalls := func() int {
		t.Helper()
		v, err := cl.QueryWorkflow(bounded(), id, rid, "calls")
		must(t, err)
		var n int
		must(t, v.Get(&n))
		return n
	}
	const (
		accepted  = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
		completed = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
	)

	// Completed stage: the handler's result comes back with the call.
	h, err := update("add-1", "add", client.WorkflowUpdateStageCompleted, 5)
	must(t, err)
	var n int
	must(t, h.Get(bounded(), &n))
	if n != 5 || h.WorkflowID() != id || h.RunID() != rid || h.UpdateID() != "add-1" {
		t.Fatalf("add-1: result %d, handle %s/%s/%s", n, h.WorkflowID(), h.RunID(), h.UpdateID())
	}

	// The validator rejects: the caller gets its error and history does not change.
	before := strings.Join(types(history(t, id, rid)), ",")
	h, err = update("add-neg", "add", client.WorkflowUpdateStageCompleted, -3)
	if err == nil {
		err = h.Get(bounded(), &n)
	}
	var rejected *temporal.ApplicationError
	if !errors.As(err, &rejected) || !strings.Contains(err.Error(), "negative amount -3") {
		t.Fatalf("rejected update: got %v (%T), want the validator's error", err, err)
	}
	if after := strings.Join(types(history(t, id, rid)), ","); after != before {
		t.Fatalf("rejection changed history\nbefore %s\n after %s", before, after)
	}
	if c := addCalls(); c != 1 {
		t.Fatalf("add handler ran %d times after the rejection, want 1", c)
	}

	// The handler fails: an application error with its type and details.
	h, err = update("fail-1", "fail", client.WorkflowUpdateStageCompleted, "boom")
	must(t, err)
	err = h.Get(bounded(), nil)
	var appErr *temporal.ApplicationError
	var detail string
	if !errors.As(err, &appErr) || appErr.Type() != "UpdateBoom" || !strings.Contains(appErr.Error(), "boom") ||
		appErr.Details(&detail) != nil || detail != "detail" {
		t.Fatalf("failing handler: got %v (%T), want ApplicationError UpdateBoom", err, err)
	}

	// Accepted stage: the call returns once the update is in history, before its handler ends.
	h, err = update("wait-1", "wait", client.WorkflowUpdateStageAccepted)
	must(t, err)
	evs := history(t, id, rid)
	if acc, done := updateIDs(evs, accepted), updateIDs(evs, completed); !has(acc, "wait-1") || has(done, "wait-1") {
		t.Fatalf("after Accepted: accepted %v, completed %v", acc, done)
	}
	// The same ID while the update is in flight joins it.
	h2, err := update("wait-1", "wait", client.WorkflowUpdateStageAccepted)
	must(t, err)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	var s string
	err = h.Get(short, &s)
	cancel()
	var timeoutErr *client.WorkflowUpdateServiceTimeoutOrCanceledError
	if !errors.As(err, &timeoutErr) {
		t.Fatalf("polling wait-1 before the release: got %q, %v; want a timeout", s, err)
	}
	must(t, cl.SignalWorkflow(bounded(), id, rid, "release", nil))
	must(t, h.Get(bounded(), &s))
	var s2, s3 string
	must(t, h2.Get(bounded(), &s2))
	fresh := cl.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{WorkflowID: id, RunID: rid, UpdateID: "wait-1"})
	must(t, fresh.Get(bounded(), &s3))
	if s != "released at 5" || s2 != s || s3 != s {
		t.Fatalf("wait-1 results %q %q %q, want \"released at 5\"", s, s2, s3)
	}

	// A completed update's ID again (other args): its first outcome, the handler not run again.
	h, err = update("add-1", "add", client.WorkflowUpdateStageCompleted, 100)
	must(t, err)
	must(t, h.Get(bounded(), &n))
	if c := addCalls(); n != 5 || c != 1 {
		t.Fatalf("repeated add-1: result %d, handler ran %d times; want 5 and 1", n, c)
	}

	// "finish" lets the run complete.
	h, err = update("finish-1", "finish", client.WorkflowUpdateStageCompleted)
	must(t, err)
	must(t, h.Get(bounded(), &n))
	var final int
	must(t, run.Get(bounded(), &final))
	if n != 5 || final != 5 {
		t.Fatalf("finish %d, workflow result %d", n, final)
	}
	evs = history(t, id, rid)
	want := "add-1,fail-1,wait-1,finish-1"
	acc, done := strings.Join(updateIDs(evs, accepted), ","), strings.Join(updateIDs(evs, completed), ",")
	if acc != want || done != want {
		t.Fatalf("update events: accepted %s, completed %s; want %s for both", acc, done, want)
	}
	if last := evs[len(evs)-1].EventType; last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("last event %v", last)
	}
	for _, e := range evs {
		if e.EventType != completed {
			continue
		}
		a := e.GetWorkflowExecutionUpdateCompletedEventAttributes()
		ref := a.GetAcceptedEventId()
		if ref < 1 || ref > int64(len(evs)) || evs[ref-1].EventType != accepted ||
			evs[ref-1].GetWorkflowExecutionUpdateAcceptedEventAttributes().GetProtocolInstanceId() != a.GetMeta().GetUpdateId() {
			t.Fatalf("completed event %d of %s names accepted event %d", e.EventId, a.GetMeta().GetUpdateId(), ref)
		}
		failure := a.GetOutcome().GetFailure()
		if isFail := a.GetMeta().GetUpdateId() == "fail-1"; isFail != (failure != nil) ||
			isFail && failure.GetApplicationFailureInfo().GetType() != "UpdateBoom" {
			t.Fatalf("outcome of %s: %v", a.GetMeta().GetUpdateId(), a.GetOutcome())
		}
	}

	// The run is closed: a new update is NotFound, while a completed one's ID still gets its
	// outcome, and so does a poll.
	_, err = update("late-1", "add", client.WorkflowUpdateStageCompleted, 1)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("update on the closed run: got %v (%T), want NotFound", err, err)
	}
	h, err = update("add-1", "add", client.WorkflowUpdateStageCompleted, 1)
	if err == nil {
		err = h.Get(bounded(), &n)
	}
	if err != nil || n != 5 {
		t.Fatalf("add-1 again on the closed run: %d, %v; want 5", n, err)
	}
	fresh = cl.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{WorkflowID: id, RunID: rid, UpdateID: "fail-1"})
	if err := fresh.Get(bounded(), nil); !errors.As(err, &appErr) || appErr.Type() != "UpdateBoom" {
		t.Fatalf("polling fail-1 on the closed run: got %v, want ApplicationError UpdateBoom", err)
	}
}

// ------------------------------------------------------------------ update-with-start

// firstTaskUpdate is how a history begins when an update rode on the run's first workflow task.
const firstTaskUpdate = "WORKFLOW_EXECUTION_STARTED,WORKFLOW_TASK_SCHEDULED,WORKFLOW_TASK_STARTED," +
	"WORKFLOW_TASK_COMPLETED,WORKFLOW_EXECUTION_UPDATE_ACCEPTED,WORKFLOW_EXECUTION_UPDATE_COMPLETED"

func bounded20(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// countType is how many events of type ty the history holds.
func countType(evs []*historypb.HistoryEvent, ty enumspb.EventType) int {
	n := 0
	for _, e := range evs {
		if e.EventType == ty {
			n++
		}
	}
	return n
}

// updateWithStart sends one update-with-start of UpdatesWorkflow under id (ExecuteMultiOperation
// with [StartWorkflow, UpdateWorkflow]) that waits for the update's outcome, for at most 20 s.
func updateWithStart(t *testing.T, id string, policy enumspb.WorkflowIdConflictPolicy, updateID, name string,
	args ...interface{}) (client.WithStartWorkflowOperation, client.WorkflowUpdateHandle, error) {
	o := opts(id)
	o.WorkflowIDConflictPolicy = policy
	op := cl.NewWithStartWorkflowOperation(o, UpdatesWorkflow)
	h, err := cl.UpdateWithStartWorkflow(bounded20(t), client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateID: updateID, UpdateName: name, Args: args,
			WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	return op, h, err
}

// updateWithStartOK is updateWithStart that must succeed: the update's int result, its handle and
// the run the start operation reports.
func updateWithStartOK(t *testing.T, id string, policy enumspb.WorkflowIdConflictPolicy, updateID, name string,
	args ...interface{}) (int, client.WorkflowUpdateHandle, client.WorkflowRun) {
	t.Helper()
	op, h, err := updateWithStart(t, id, policy, updateID, name, args...)
	if err != nil {
		t.Fatalf("update-with-start %s%v as %s: %v (%T)", name, args, updateID, err, err)
	}
	var n int
	if err := h.Get(bounded20(t), &n); err != nil {
		t.Fatalf("outcome of %s: %v (%T)", updateID, err, err)
	}
	run, err := op.Get(bounded20(t))
	if err != nil {
		t.Fatalf("start operation of %s: %v", updateID, err)
	}
	return n, h, run
}

func TestUpdateWithStart(t *testing.T) {
	id := wid(t)
	const (
		useExisting = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
		accepted    = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
		completed   = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
		started     = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
	)
	addCalls := func() int {
		t.Helper()
		v, err := cl.QueryWorkflow(bounded20(t), id, "", "calls")
		must(t, err)
		var n int
		must(t, v.Get(&n))
		return n
	}
	currentRun := func() *workflowservice.DescribeWorkflowExecutionResponse {
		t.Helper()
		d, err := cl.DescribeWorkflowExecution(bounded20(t), id, "")
		must(t, err)
		return d
	}

	// A new workflow id: the run starts and the update rides on its first workflow task.
	n, h, run := updateWithStartOK(t, id, useExisting, "uws-add-1", "add", 5)
	rid := run.GetRunID()
	if n != 5 || rid == "" || run.GetID() != id || h.WorkflowID() != id || h.RunID() != rid || h.UpdateID() != "uws-add-1" {
		t.Fatalf("first call: result %d, run %s/%s, handle %s/%s/%s", n, run.GetID(), rid, h.WorkflowID(), h.RunID(), h.UpdateID())
	}
	if d := currentRun(); d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING ||
		d.WorkflowExecutionInfo.Execution.RunId != rid {
		t.Fatalf("after the first call: current run %s is %v", d.WorkflowExecutionInfo.Execution.RunId, d.WorkflowExecutionInfo.Status)
	}
	evs := history(t, id, rid)
	if ty := types(evs); len(ty) < 6 || strings.Join(ty[:6], ",") != firstTaskUpdate {
		t.Fatalf("history after the first call\n got %s\nwant %s...", strings.Join(ty, ","), firstTaskUpdate)
	}
	acc := evs[4].GetWorkflowExecutionUpdateAcceptedEventAttributes()
	if acc.GetProtocolInstanceId() != "uws-add-1" || acc.GetAcceptedRequest().GetMeta().GetUpdateId() != "uws-add-1" ||
		acc.GetAcceptedRequest().GetInput().GetName() != "add" {
		t.Fatalf("accepted event: %v", acc)
	}
	done := evs[5].GetWorkflowExecutionUpdateCompletedEventAttributes()
	if done.GetAcceptedEventId() != evs[4].EventId || done.GetMeta().GetUpdateId() != "uws-add-1" || done.GetOutcome().GetSuccess() == nil {
		t.Fatalf("completed event: %v", done)
	}

	// USE_EXISTING on the running workflow: no new run, the update applies to it.
	n, h, run2 := updateWithStartOK(t, id, useExisting, "uws-add-2", "add", 3)
	if n != 8 || run2.GetRunID() != rid || h.RunID() != rid {
		t.Fatalf("second call: result %d, run %s, handle run %s; want 8 on run %s", n, run2.GetRunID(), h.RunID(), rid)
	}
	if c := countType(history(t, id, rid), started); c != 1 || currentRun().WorkflowExecutionInfo.Execution.RunId != rid {
		t.Fatalf("second call: %d WORKFLOW_EXECUTION_STARTED events, current run %s", c, currentRun().WorkflowExecutionInfo.Execution.RunId)
	}

	// The first update id again (other args): its stored outcome, the handler not run again.
	n, _, run3 := updateWithStartOK(t, id, useExisting, "uws-add-1", "add", 100)
	if c := addCalls(); n != 5 || c != 2 || run3.GetRunID() != rid {
		t.Fatalf("repeated uws-add-1: result %d, handler ran %d times, run %s; want 5, 2, %s", n, c, run3.GetRunID(), rid)
	}

	// FAIL on the running workflow: the start fails with already-started, the update is not applied.
	_, _, err := updateWithStart(t, id, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, "uws-fail", "add", 1)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if !errors.As(err, &already) || already.RunId != rid {
		t.Fatalf("FAIL on the running workflow: got %v (%T), want WorkflowExecutionAlreadyStarted naming run %s", err, err, rid)
	}
	if c := addCalls(); c != 2 || has(updateIDs(history(t, id, rid), accepted), "uws-fail") {
		t.Fatalf("the FAIL call reached the workflow: handler ran %d times", c)
	}

	// The validator rejects: the update-failed error comes back and history does not change.
	before := strings.Join(types(history(t, id, rid)), ",")
	_, h, err = updateWithStart(t, id, useExisting, "uws-neg", "add", -4)
	if err == nil {
		err = h.Get(bounded20(t), &n)
	}
	var rejected *temporal.ApplicationError
	if !errors.As(err, &rejected) || !strings.Contains(err.Error(), "negative amount -4") {
		t.Fatalf("rejected update-with-start: got %v (%T), want the validator's error", err, err)
	}
	if after := strings.Join(types(history(t, id, rid)), ","); after != before {
		t.Fatalf("rejection changed history\nbefore %s\n after %s", before, after)
	}
	if c := addCalls(); c != 2 {
		t.Fatalf("add handler ran %d times after the rejection, want 2", c)
	}
	// A rejected update is not remembered: its id can be used again.
	if n, _, _ = updateWithStartOK(t, id, useExisting, "uws-neg", "add", 1); n != 9 {
		t.Fatalf("uws-neg after its rejection: result %d, want 9", n)
	}

	// "finish" through update-with-start lets the run complete with the counter.
	n, _, _ = updateWithStartOK(t, id, useExisting, "uws-finish", "finish")
	var final int
	must(t, run.Get(bounded20(t), &final))
	if n != 9 || final != 9 {
		t.Fatalf("finish %d, workflow result %d; want 9", n, final)
	}
	evs = history(t, id, rid)
	want := "uws-add-1,uws-add-2,uws-neg,uws-finish"
	if a, c := strings.Join(updateIDs(evs, accepted), ","), strings.Join(updateIDs(evs, completed), ","); a != want || c != want {
		t.Fatalf("update events: accepted %s, completed %s; want %s for both", a, c, want)
	}
	if c := countType(evs, started); c != 1 || evs[len(evs)-1].EventType != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("closed run: %d WORKFLOW_EXECUTION_STARTED events, last event %v", c, evs[len(evs)-1].EventType)
	}
	closedTypes := strings.Join(types(evs), ",")

	// The run is closed. An update id it completed still gets its outcome from that run, and no
	// new run starts.
	n, h, run4 := updateWithStartOK(t, id, useExisting, "uws-add-1", "add", 7)
	if n != 5 || h.RunID() != rid || run4.GetRunID() != rid {
		t.Fatalf("uws-add-1 after the close: result %d, handle run %s, start run %s; want 5 from run %s", n, h.RunID(), run4.GetRunID(), rid)
	}
	if d := currentRun(); d.WorkflowExecutionInfo.Execution.RunId != rid ||
		d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("after uws-add-1 on the closed run: current run %s is %v", d.WorkflowExecutionInfo.Execution.RunId, d.WorkflowExecutionInfo.Status)
	}
	if got := strings.Join(types(history(t, id, rid)), ","); got != closedTypes {
		t.Fatalf("the closed run's history changed\nbefore %s\n after %s", closedTypes, got)
	}

	// A new update id starts a new run (the default reuse policy allows it), the update on its
	// first task.
	n, h, next := updateWithStartOK(t, id, useExisting, "uws-next-1", "add", 4)
	nrid := next.GetRunID()
	if n != 4 || nrid == rid || nrid == "" || h.RunID() != nrid {
		t.Fatalf("new update id after the close: result %d, run %s (closed %s), handle run %s", n, nrid, rid, h.RunID())
	}
	if ty := types(history(t, id, nrid)); len(ty) < 6 || strings.Join(ty[:6], ",") != firstTaskUpdate {
		t.Fatalf("history of the new run\n got %s\nwant %s...", strings.Join(ty, ","), firstTaskUpdate)
	}
	n, _, _ = updateWithStartOK(t, id, useExisting, "uws-next-finish", "finish")
	must(t, next.Get(bounded20(t), &final))
	if n != 4 || final != 4 {
		t.Fatalf("new run: finish %d, workflow result %d; want 4", n, final)
	}
}

// A rejected update-with-start on a new workflow id still starts the workflow: the caller gets the
// validator's error and the run's history holds only its first, completed workflow task.
func TestUpdateWithStartRejectedStillStarts(t *testing.T) {
	id := wid(t)
	useExisting := enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	op, h, err := updateWithStart(t, id, useExisting, "uws-neg", "add", -1)
	var n int
	if err == nil {
		err = h.Get(bounded20(t), &n)
	}
	var rejected *temporal.ApplicationError
	if !errors.As(err, &rejected) || !strings.Contains(err.Error(), "negative amount -1") {
		t.Fatalf("rejected update-with-start: got %v (%T), want the validator's error", err, err)
	}
	run, err := op.Get(bounded20(t))
	must(t, err)
	rid := run.GetRunID()
	if rid == "" || h == nil || h.RunID() != rid {
		t.Fatalf("start operation run %q, handle %v", rid, h)
	}
	if st := describeStatus(t, id, rid); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("status after the rejection: %v", st)
	}
	want := "WORKFLOW_EXECUTION_STARTED,WORKFLOW_TASK_SCHEDULED,WORKFLOW_TASK_STARTED,WORKFLOW_TASK_COMPLETED"
	if got := strings.Join(types(history(t, id, rid)), ","); got != want {
		t.Fatalf("history after the rejection\n got %s\nwant %s", got, want)
	}

	n, _, run2 := updateWithStartOK(t, id, useExisting, "uws-finish", "finish")
	var final int
	must(t, run.Get(bounded20(t), &final))
	if n != 0 || final != 0 || run2.GetRunID() != rid {
		t.Fatalf("finish %d on run %s, workflow result %d; want 0 on run %s", n, run2.GetRunID(), final, rid)
	}
	evs := history(t, id, rid)
	if ids := strings.Join(updateIDs(evs, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED), ","); ids != "uws-finish" {
		t.Fatalf("accepted updates %s, want only uws-finish", ids)
	}
}

// ------------------------------------------------------------------ children

func runParent(t *testing.T, scenario string) (childOutcome, []string) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), ParentWorkflow, scenario)
	must(t, err)
	if scenario == "terminate" {
		for i := 0; i < 100; i++ {
			if _, err := cl.DescribeWorkflowExecution(ctx, id+"-child", ""); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		must(t, cl.TerminateWorkflow(ctx, id+"-child", "", "from test"))
	}
	var o childOutcome
	must(t, run.Get(ctx, &o))
	return o, types(history(t, id, ""))
}

func TestChildWorkflows(t *testing.T) {
	o, ty := runParent(t, "complete")
	if o.OK != "child done" || !has(ty, "CHILD_WORKFLOW_EXECUTION_COMPLETED") || !has(ty, "START_CHILD_WORKFLOW_EXECUTION_INITIATED") {
		t.Fatalf("complete %+v %v", o, ty)
	}
	o, ty = runParent(t, "fail")
	if o.AppType != "ChildBoom" || !has(ty, "CHILD_WORKFLOW_EXECUTION_FAILED") {
		t.Fatalf("fail %+v %v", o, ty)
	}
	o, ty = runParent(t, "cancel")
	if !o.Canceled || !has(ty, "CHILD_WORKFLOW_EXECUTION_CANCELED") {
		t.Fatalf("cancel %+v %v", o, ty)
	}
	o, ty = runParent(t, "terminate")
	if !o.Term || !has(ty, "CHILD_WORKFLOW_EXECUTION_TERMINATED") {
		t.Fatalf("terminate %+v %v", o, ty)
	}
}

func TestParentClosePolicy(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), ParentWorkflow, "close_policy")
	must(t, err)
	for i := 0; i < 100; i++ {
		n := 0
		for _, x := range types(history(t, id, "")) {
			if x == "CHILD_WORKFLOW_EXECUTION_STARTED" {
				n++
			}
		}
		if n == 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, cl.SignalWorkflow(ctx, id, "", "go", nil))
	must(t, run.Get(ctx, nil))
	waitStatus(t, id+"-TERMINATE", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED)
	waitStatus(t, id+"-REQUEST_CANCEL", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
	time.Sleep(300 * time.Millisecond)
	if st := describeStatus(t, id+"-ABANDON", ""); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("abandoned child %v", st)
	}
	must(t, cl.TerminateWorkflow(ctx, id+"-ABANDON", "", "cleanup"))
}

// ------------------------------------------------------------------ continue-as-new, markers, upserts

func TestContinueAsNew(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), ContinueAsNewWorkflow, 3, []int{})
	must(t, err)
	firstRun := run.GetRunID()
	var acc []int
	must(t, run.Get(ctx, &acc)) // follows the chain
	if fmt.Sprint(acc) != "[3 2 1 0]" {
		t.Fatalf("acc %v", acc)
	}
	evs := history(t, id, firstRun)
	last := evs[len(evs)-1].GetWorkflowExecutionContinuedAsNewEventAttributes()
	if last == nil || last.NewExecutionRunId == "" {
		t.Fatalf("first run does not end in CAN")
	}
	next := history(t, id, last.NewExecutionRunId)
	if next[0].GetWorkflowExecutionStartedEventAttributes().ContinuedExecutionRunId != firstRun {
		t.Fatalf("new run does not link back")
	}
}

func TestMarkersLocalActivityVersionSideEffect(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), MarkersWorkflow, "LA")
	must(t, err)
	var r string
	must(t, run.Get(ctx, &r))
	if r != "Hello, LA! (v1) se=42" {
		t.Fatalf("result %q", r)
	}
	names := map[string]int{}
	for _, e := range history(t, id, "") {
		if a := e.GetMarkerRecordedEventAttributes(); a != nil {
			names[a.MarkerName]++
		}
	}
	if names["LocalActivity"] != 1 || names["Version"] != 1 || names["SideEffect"] != 1 {
		t.Fatalf("markers %v", names)
	}
}

func TestUpsertSearchAttributesAndMemo(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), UpsertWorkflow)
	must(t, err)
	must(t, run.Get(ctx, nil))
	var ups, mod int
	for _, e := range history(t, id, "") {
		if a := e.GetUpsertWorkflowSearchAttributesEventAttributes(); a != nil {
			if _, ok := a.SearchAttributes.IndexedFields["CustomKeywordField"]; ok {
				ups++
			}
		}
		if a := e.GetWorkflowPropertiesModifiedEventAttributes(); a != nil {
			if _, ok := a.UpsertedMemo.Fields["note"]; ok {
				mod++
			}
		}
	}
	if ups != 1 || mod != 1 {
		t.Fatalf("upsert events %d, memo events %d", ups, mod)
	}
	d, err := cl.DescribeWorkflowExecution(ctx, id, "")
	must(t, err)
	if _, ok := d.WorkflowExecutionInfo.Memo.GetFields()["note"]; !ok {
		t.Fatalf("memo not updated: %v", d.WorkflowExecutionInfo.Memo)
	}
}

// ------------------------------------------------------------------ history, polls

func TestHistoryPagingAndLongPoll(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	run, err := cl.ExecuteWorkflow(ctx, opts(id), ManySignalsWorkflow, 120)
	must(t, err)
	for i := 0; i < 120; i++ {
		must(t, cl.SignalWorkflow(ctx, id, "", "tick", i))
	}
	must(t, run.Get(ctx, nil))
	var ids []int64
	var tok []byte
	pages := 0
	for {
		r, err := cl.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
			Namespace: "default", Execution: &commonpb.WorkflowExecution{WorkflowId: id}, MaximumPageSize: 20, NextPageToken: tok})
		must(t, err)
		pages++
		for _, e := range r.History.Events {
			ids = append(ids, e.EventId)
		}
		tok = r.NextPageToken
		if len(tok) == 0 || pages > 100 {
			break
		}
	}
	for i, x := range ids {
		if x != int64(i+1) {
			t.Fatalf("event ids not contiguous at %d: %d", i, x)
		}
	}
	if pages < 2 || len(ids) != len(history(t, id, "")) || len(ids) < 120 {
		t.Fatalf("pages %d events %d", pages, len(ids))
	}
	// long poll: waits for a new event on a running workflow
	run, err = cl.ExecuteWorkflow(ctx, opts(id+"-lp"), WaitSignalWorkflow, 1)
	must(t, err)
	time.Sleep(500 * time.Millisecond)
	go func() {
		time.Sleep(time.Second)
		_ = cl.SignalWorkflow(context.Background(), id+"-lp", "", "add", "x")
	}()
	t0 := time.Now()
	it := cl.GetWorkflowHistory(ctx, id+"-lp", run.GetRunID(), true, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	var closeEv []string
	for it.HasNext() {
		e, err := it.Next()
		must(t, err)
		closeEv = append(closeEv, enumspb.EventType_name[int32(e.EventType)])
	}
	if len(closeEv) != 1 || closeEv[0] != "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED" || time.Since(t0) < 900*time.Millisecond {
		t.Fatalf("close-event long poll %v after %v", closeEv, time.Since(t0))
	}
}

func TestEmptyPollReturnsBeforeDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	r, err := cl.WorkflowService().PollActivityTaskQueue(ctx, &workflowservice.PollActivityTaskQueueRequest{
		Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: fmt.Sprintf("empty-%d", time.Now().UnixNano())}, Identity: "go-e2e"})
	must(t, err)
	if len(r.TaskToken) != 0 || time.Since(t0) < 2*time.Second {
		t.Fatalf("poll returned %v after %v", r, time.Since(t0))
	}
}

func TestStickyFallbackAfterWorkerShutdown(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	q := fmt.Sprintf("go-sticky-%d", time.Now().UnixNano())
	w1 := worker.New(cl, q, worker.Options{})
	w1.RegisterWorkflow(WaitSignalWorkflow)
	must(t, w1.Start())
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: q}, WaitSignalWorkflow, 2)
	must(t, err)
	must(t, cl.SignalWorkflow(ctx, id, "", "add", "one"))
	for i := 0; i < 50; i++ {
		v, err := cl.QueryWorkflow(ctx, id, "", "get_items")
		var items []string
		if err == nil && v.Get(&items) == nil && len(items) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	w1.Stop() // sends ShutdownWorker
	w2 := worker.New(cl, q, worker.Options{})
	w2.RegisterWorkflow(WaitSignalWorkflow)
	must(t, w2.Start())
	defer w2.Stop()
	t0 := time.Now()
	must(t, cl.SignalWorkflow(ctx, id, "", "add", "two"))
	var items []string
	must(t, run.Get(ctx, &items))
	if strings.Join(items, ",") != "one,two" || time.Since(t0) > 25*time.Second {
		t.Fatalf("%v after %v", items, time.Since(t0))
	}
}

// ------------------------------------------------------------------ namespaces, system

func TestNamespaces(t *testing.T) {
	ctx := ctxT(t)
	name := fmt.Sprintf("go-ns-%d", time.Now().UnixNano())
	nc, err := client.NewNamespaceClient(client.Options{HostPort: srv.addr, Logger: quietLogger{}})
	must(t, err)
	defer nc.Close()
	must(t, nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: name, Description: "go e2e",
		WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}))
	var exists *serviceerror.NamespaceAlreadyExists
	if err := nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: name,
		WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}); !errors.As(err, &exists) {
		t.Fatalf("duplicate register: %v", err)
	}
	d, err := nc.Describe(ctx, name)
	must(t, err)
	if d.NamespaceInfo.Description != "go e2e" || d.NamespaceInfo.Capabilities == nil {
		t.Fatalf("describe %+v", d.NamespaceInfo)
	}
	lr, err := cl.WorkflowService().ListNamespaces(ctx, &workflowservice.ListNamespacesRequest{PageSize: 1000})
	must(t, err)
	found := map[string]bool{}
	for _, n := range lr.Namespaces {
		found[n.NamespaceInfo.Name] = true
	}
	if !found[name] || !found["default"] || !found[extraNS] {
		t.Fatalf("list %v", found)
	}
	must(t, nc.Update(ctx, &workflowservice.UpdateNamespaceRequest{Namespace: name,
		UpdateInfo: &namespacepb.UpdateNamespaceInfo{Description: "updated"}}))
	d, err = nc.Describe(ctx, name)
	must(t, err)
	if d.NamespaceInfo.Description != "updated" {
		t.Fatalf("update not applied: %q", d.NamespaceInfo.Description)
	}
	var nf *serviceerror.NamespaceNotFound
	if _, err := nc.Describe(ctx, "missing-"+name); !errors.As(err, &nf) {
		t.Fatalf("missing namespace: %T %v", err, err)
	}
	// workflows run in a pre-created non-default namespace
	c2, err := client.Dial(client.Options{HostPort: srv.addr, Namespace: extraNS, Logger: quietLogger{}})
	must(t, err)
	defer c2.Close()
	q := fmt.Sprintf("go-ns-%d", time.Now().UnixNano())
	w := worker.New(c2, q, worker.Options{})
	w.RegisterWorkflow(HelloWorkflow)
	w.RegisterActivity(Hello)
	must(t, w.Start())
	defer w.Stop()
	run, err := c2.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: q, TaskQueue: q}, HelloWorkflow, "ns")
	must(t, err)
	var r string
	must(t, run.Get(ctx, &r))
	if r != "Hello, ns!" {
		t.Fatalf("%q", r)
	}
}

func TestSystemInfoAndHealth(t *testing.T) {
	ctx := ctxT(t)
	si, err := cl.WorkflowService().GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
	must(t, err)
	if si.Capabilities == nil {
		t.Fatalf("no capabilities")
	}
	if _, err := cl.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("health: %v", err)
	}
}

var intKey = temporal.NewSearchAttributeKeyInt64("CustomIntField")

func TestListAndCountOverCustomSearchAttributes(t *testing.T) {
	ctx := ctxT(t)
	id := wid(t)
	tag := "go-list-" + id
	for i := int64(0); i < 2; i++ {
		o := opts(fmt.Sprintf("%s-%d", id, i))
		o.TypedSearchAttributes = temporal.NewSearchAttributes(kwKey.ValueSet(tag), intKey.ValueSet(i))
		run, err := cl.ExecuteWorkflow(ctx, o, HelloWorkflow, "list")
		must(t, err)
		must(t, run.Get(ctx, nil))
	}
	query := fmt.Sprintf("CustomKeywordField = '%s' AND CustomIntField >= 1 AND ExecutionStatus = 'Completed'", tag)
	var listed []string
	for attempt := 0; attempt < 50 && len(listed) == 0; attempt++ {
		page, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		must(t, err)
		for _, e := range page.Executions {
			listed = append(listed, e.Execution.WorkflowId)
		}
		if len(listed) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(listed) != 1 || listed[0] != id+"-1" {
		t.Fatalf("listed %v", listed)
	}
	count, err := cl.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: fmt.Sprintf("CustomKeywordField = '%s'", tag)})
	must(t, err)
	if count.Count != 2 {
		t.Fatalf("count %d", count.Count)
	}
	// Typed views need the type the server puts on each value.
	d, err := cl.DescribeWorkflowExecution(ctx, id+"-1", "")
	must(t, err)
	p := d.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()["CustomIntField"]
	if p == nil || string(p.Metadata["type"]) != "Int" || string(p.Data) != "1" {
		t.Fatalf("CustomIntField as described: %v", p)
	}
	bad := opts(id + "-bad")
	bad.TypedSearchAttributes = temporal.NewSearchAttributes(
		temporal.NewSearchAttributeKeyKeyword("GoNeverRegistered").ValueSet("x"))
	_, err = cl.ExecuteWorkflow(ctx, bad, HelloWorkflow, "bad")
	var invalid *serviceerror.InvalidArgument
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "no mapping defined for search attribute GoNeverRegistered") {
		t.Fatalf("unregistered attribute: %v", err)
	}
}
