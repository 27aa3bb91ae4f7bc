package sdkgo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ---------------------------------------------------------------- header propagation

type ctxKey struct{}

const headerKey = "x-sundial-test"

// headerPropagator copies a string between the context and the Temporal header.
type headerPropagator struct{}

func (headerPropagator) Inject(ctx context.Context, w workflow.HeaderWriter) error {
	if v, ok := ctx.Value(ctxKey{}).(string); ok {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			return err
		}
		w.Set(headerKey, p)
	}
	return nil
}
func (headerPropagator) InjectFromWorkflow(ctx workflow.Context, w workflow.HeaderWriter) error {
	if v, ok := ctx.Value(ctxKey{}).(string); ok {
		p, _ := converter.GetDefaultDataConverter().ToPayload(v)
		w.Set(headerKey, p)
	}
	return nil
}
func (headerPropagator) Extract(ctx context.Context, r workflow.HeaderReader) (context.Context, error) {
	if p, ok := r.Get(headerKey); ok {
		var v string
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
		return context.WithValue(ctx, ctxKey{}, v), nil
	}
	return ctx, nil
}
func (headerPropagator) ExtractToWorkflow(ctx workflow.Context, r workflow.HeaderReader) (workflow.Context, error) {
	if p, ok := r.Get(headerKey); ok {
		var v string
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
		return workflow.WithValue(ctx, ctxKey{}, v), nil
	}
	return ctx, nil
}

// ---------------------------------------------------------------- activities

func Hello(ctx context.Context, name string) (string, error) { return "Hello, " + name + "!", nil }

func Flaky(ctx context.Context, failTimes int32) (string, error) {
	a := activity.GetInfo(ctx).Attempt
	if a <= failTimes {
		return "", temporal.NewApplicationError(fmt.Sprintf("attempt %d fails", a), "FlakyError")
	}
	return fmt.Sprintf("ok at attempt %d", a), nil
}

func AlwaysFail(ctx context.Context, errType string) (string, error) {
	return "", temporal.NewApplicationError(fmt.Sprintf("failing at attempt %d", activity.GetInfo(ctx).Attempt), errType)
}

func Sleepy(ctx context.Context, d time.Duration) (string, error) {
	select {
	case <-time.After(d):
		return "slept", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func HeartbeatThenStall(ctx context.Context) (string, error) {
	info := activity.GetInfo(ctx)
	prev := ""
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prev)
	}
	activity.RecordHeartbeat(ctx, fmt.Sprintf("hb-%d(prev=%s)", info.Attempt, prev))
	select {
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	return "", ctx.Err()
}

func HeartbeatUntilCancelled(ctx context.Context) (string, error) {
	for i := 0; i < 300; i++ {
		activity.RecordHeartbeat(ctx, i)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "never cancelled", nil
}

// ---------------------------------------------------------------- workflows

func HelloWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var r string
	err := workflow.ExecuteActivity(ctx, Hello, name).Get(ctx, &r)
	return r, err
}

// WaitSignalWorkflow collects "add" signals until it has `expected` (or gets "finish" when 0).
func WaitSignalWorkflow(ctx workflow.Context, expected int) ([]string, error) {
	items := []string{}
	done := false
	if err := workflow.SetQueryHandler(ctx, "get_items", func() ([]string, error) { return items, nil }); err != nil {
		return nil, err
	}
	addCh := workflow.GetSignalChannel(ctx, "add")
	finCh := workflow.GetSignalChannel(ctx, "finish")
	for {
		if expected > 0 && len(items) >= expected || expected == 0 && done {
			return items, nil
		}
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(addCh, func(c workflow.ReceiveChannel, _ bool) {
			var s string
			c.Receive(ctx, &s)
			items = append(items, s)
		})
		sel.AddReceive(finCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); done = true })
		cancelled := false
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
		sel.Select(ctx)
		if cancelled {
			return items, ctx.Err()
		}
	}
}

func SleepWorkflow(ctx workflow.Context, d time.Duration) (string, error) {
	if err := workflow.Sleep(ctx, d); err != nil {
		return "", err
	}
	return "woke", nil
}

func TimerCancelWorkflow(ctx workflow.Context) (string, error) {
	tctx, cancel := workflow.WithCancel(ctx)
	timer := workflow.NewTimer(tctx, time.Minute)
	result := ""
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(workflow.Future) { result = "timer fired" })
	sel.AddReceive(workflow.GetSignalChannel(ctx, "proceed"), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		cancel()
		result = "signalled before timer"
	})
	sel.Select(ctx)
	return result, nil
}

type infoResult struct {
	Attempt int32
	Header  string
	Memo    string
	RunTO   time.Duration
}

func InfoWorkflow(ctx workflow.Context, failUntil int32) (infoResult, error) {
	info := workflow.GetInfo(ctx)
	if info.Attempt < failUntil {
		return infoResult{}, temporal.NewApplicationError(fmt.Sprintf("fail on attempt %d", info.Attempt), "Retry")
	}
	r := infoResult{Attempt: info.Attempt, RunTO: info.WorkflowRunTimeout}
	if v, ok := ctx.Value(ctxKey{}).(string); ok {
		r.Header = v
	}
	if info.Memo != nil {
		if p, ok := info.Memo.Fields["k"]; ok {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &r.Memo)
		}
	}
	return r, nil
}

var (
	taskFailMu sync.Mutex
	taskFails  = map[string]int{}
)

func TaskFailOnceWorkflow(ctx workflow.Context, key string) (string, error) {
	taskFailMu.Lock()
	n := taskFails[key]
	taskFails[key] = n + 1
	taskFailMu.Unlock()
	if n == 0 && !workflow.IsReplaying(ctx) {
		panic("deliberate workflow task failure") // a panic fails the workflow task; the server retries it
	}
	return "recovered", nil
}

type actOutcome struct {
	OK          string
	Err         string
	RetryState  string
	AppType     string
	TimeoutType string
	HBDetails   string
	Canceled    bool
}

func ActivityScenarioWorkflow(ctx workflow.Context, scenario string) (actOutcome, error) {
	o := workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Second}
	var fut workflow.Future
	switch scenario {
	case "retry":
		o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: 300 * time.Millisecond, BackoffCoefficient: 2}
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), Flaky, 2)
	case "max_attempts":
		o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 3}
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), AlwaysFail, "Boom")
	case "non_retryable":
		o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, NonRetryableErrorTypes: []string{"Fatal"}}
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), AlwaysFail, "Fatal")
	case "schedule_to_close":
		o = workflow.ActivityOptions{ScheduleToCloseTimeout: time.Second}
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), Sleepy, 10*time.Second)
	case "start_to_close":
		o = workflow.ActivityOptions{StartToCloseTimeout: time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), Sleepy, 10*time.Second)
	case "schedule_to_start":
		o.TaskQueue = "no-worker-" + workflow.GetInfo(ctx).WorkflowExecution.ID
		o.ScheduleToStartTimeout = time.Second
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), Sleepy, time.Millisecond)
	case "heartbeat_timeout":
		o = workflow.ActivityOptions{StartToCloseTimeout: 20 * time.Second, HeartbeatTimeout: time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 2}}
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), HeartbeatThenStall)
	case "cancel":
		o = workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: 5 * time.Second,
			WaitForCancellation: true}
		actx, cancel := workflow.WithCancel(ctx)
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(actx, o), HeartbeatUntilCancelled)
		_ = workflow.Sleep(ctx, time.Second)
		cancel()
	default:
		return actOutcome{}, temporal.NewNonRetryableApplicationError("unknown scenario", "Bad", nil)
	}
	var r string
	err := fut.Get(ctx, &r)
	if err == nil {
		return actOutcome{OK: r}, nil
	}
	out := actOutcome{Err: err.Error()}
	var ae *temporal.ActivityError
	if errors.As(err, &ae) {
		out.RetryState = ae.RetryState().String()
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		out.AppType = app.Type()
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		out.TimeoutType = te.TimeoutType().String()
		if te.HasLastHeartbeatDetails() {
			_ = te.LastHeartbeatDetails(&out.HBDetails)
		}
	}
	var ce *temporal.CanceledError
	out.Canceled = errors.As(err, &ce)
	return out, nil
}

func ChildWorkflow(ctx workflow.Context, mode string) (string, error) {
	switch mode {
	case "complete":
		return "child done", nil
	case "fail":
		return "", temporal.NewNonRetryableApplicationError("child failed on purpose", "ChildBoom", nil)
	}
	cancelled := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, "release"), func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
	sel.Select(ctx)
	if cancelled {
		return "", ctx.Err()
	}
	return "child released", nil
}

type childOutcome struct {
	OK       string
	Err      string
	AppType  string
	Canceled bool
	Term     bool
}

func ParentWorkflow(ctx workflow.Context, scenario string) (childOutcome, error) {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: id + "-child"})
	var fut workflow.ChildWorkflowFuture
	switch scenario {
	case "complete", "fail":
		fut = workflow.ExecuteChildWorkflow(cctx, ChildWorkflow, scenario)
	case "cancel":
		c2, cancel := workflow.WithCancel(cctx)
		fut = workflow.ExecuteChildWorkflow(c2, ChildWorkflow, "wait")
		if err := fut.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
			return childOutcome{}, err
		}
		cancel()
	case "terminate":
		fut = workflow.ExecuteChildWorkflow(cctx, ChildWorkflow, "wait")
	case "close_policy":
		for _, p := range []enumspb.ParentClosePolicy{enumspb.PARENT_CLOSE_POLICY_TERMINATE,
			enumspb.PARENT_CLOSE_POLICY_ABANDON, enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL} {
			c := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: id + "-" + strings.TrimPrefix(enumspb.ParentClosePolicy_name[int32(p)], "PARENT_CLOSE_POLICY_"), ParentClosePolicy: p})
			f := workflow.ExecuteChildWorkflow(c, ChildWorkflow, "wait")
			if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
				return childOutcome{}, err
			}
		}
		workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
		return childOutcome{OK: "parent closing"}, nil
	}
	var r string
	err := fut.Get(ctx, &r)
	if err == nil {
		return childOutcome{OK: r}, nil
	}
	out := childOutcome{Err: err.Error()}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		out.AppType = app.Type()
	}
	var ce *temporal.CanceledError
	out.Canceled = errors.As(err, &ce)
	var te *temporal.TerminatedError
	out.Term = errors.As(err, &te)
	return out, nil
}

func ExternalWorkflow(ctx workflow.Context, action, target string) (string, error) {
	var err error
	if action == "signal" {
		err = workflow.SignalExternalWorkflow(ctx, target, "", "add", "from-external").Get(ctx, nil)
	} else {
		err = workflow.RequestCancelExternalWorkflow(ctx, target, "").Get(ctx, nil)
	}
	if err != nil {
		return "failed: " + err.Error(), nil
	}
	return "sent", nil
}

func ContinueAsNewWorkflow(ctx workflow.Context, n int, acc []int) ([]int, error) {
	acc = append(acc, n)
	if n > 0 {
		return nil, workflow.NewContinueAsNewError(ctx, ContinueAsNewWorkflow, n-1, acc)
	}
	return acc, nil
}

func MarkersWorkflow(ctx workflow.Context, name string) (string, error) {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 5 * time.Second})
	var r string
	if err := workflow.ExecuteLocalActivity(lctx, Hello, name).Get(ctx, &r); err != nil {
		return "", err
	}
	if v := workflow.GetVersion(ctx, "sundial-change", workflow.DefaultVersion, 1); v == 1 {
		r += " (v1)"
	}
	var se int
	_ = workflow.SideEffect(ctx, func(workflow.Context) interface{} { return 42 }).Get(&se)
	return fmt.Sprintf("%s se=%d", r, se), nil
}

var kwKey = temporal.NewSearchAttributeKeyKeyword("CustomKeywordField")

func UpsertWorkflow(ctx workflow.Context) (string, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, kwKey.ValueSet("go-upserted")); err != nil {
		return "", err
	}
	if err := workflow.UpsertMemo(ctx, map[string]interface{}{"note": "memo-upserted"}); err != nil {
		return "", err
	}
	_ = workflow.Sleep(ctx, 50*time.Millisecond)
	return "upserted", nil
}

func ManySignalsWorkflow(ctx workflow.Context, n int) (int, error) {
	ch := workflow.GetSignalChannel(ctx, "tick")
	for i := 0; i < n; i++ {
		ch.Receive(ctx, nil)
	}
	return n, nil
}

// UpdatesWorkflow keeps a counter that workflow updates change:
//   - "add" (validated: the amount must not be negative) adds to it and returns the new value;
//   - "fail" returns an application error of type UpdateBoom;
//   - "wait" blocks until the "release" signal, then reports the counter;
//   - "finish" returns the counter and lets the run complete once every handler is done.
//
// Query "calls" is how many times the "add" handler ran.
func UpdatesWorkflow(ctx workflow.Context) (int, error) {
	count, calls := 0, 0
	released, done := false, false
	if err := workflow.SetQueryHandler(ctx, "calls", func() (int, error) { return calls, nil }); err != nil {
		return 0, err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, "add", func(ctx workflow.Context, n int) (int, error) {
		calls++
		count += n
		return count, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, n int) error {
		if n < 0 {
			return fmt.Errorf("negative amount %d", n)
		}
		return nil
	}})
	if err != nil {
		return 0, err
	}
	if err := workflow.SetUpdateHandler(ctx, "fail", func(ctx workflow.Context, msg string) (string, error) {
		return "", temporal.NewApplicationError(msg, "UpdateBoom", "detail")
	}); err != nil {
		return 0, err
	}
	if err := workflow.SetUpdateHandler(ctx, "wait", func(ctx workflow.Context) (string, error) {
		if err := workflow.Await(ctx, func() bool { return released }); err != nil {
			return "", err
		}
		return fmt.Sprintf("released at %d", count), nil
	}); err != nil {
		return 0, err
	}
	if err := workflow.SetUpdateHandler(ctx, "finish", func(ctx workflow.Context) (int, error) {
		done = true
		return count, nil
	}); err != nil {
		return 0, err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		workflow.GetSignalChannel(ctx, "release").Receive(ctx, nil)
		released = true
	})
	if err := workflow.Await(ctx, func() bool { return done && workflow.AllHandlersFinished(ctx) }); err != nil {
		return 0, err
	}
	return count, nil
}
