package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	commandpb "go.temporal.io/api/command/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
)

type config struct {
	Addr         string
	Namespace    string
	Workload     string
	Concurrency  int
	Duration     time.Duration
	Warmup       time.Duration
	MaxUnits     int
	Eager        bool
	VerifySample int
	WfTimeout    time.Duration
	Conns        int
	Pollers      int
	TimerDelay   time.Duration
	HeadStart    time.Duration
	Trace        *os.File // if set, one line per task received and per respond
}

// wfState is what the driver knows about one workflow it started.
type wfState struct {
	id        string
	runID     string
	started   time.Time
	done      chan struct{}
	timerSent time.Time // when the StartTimer command was sent (timer workload)
	signals   int64     // "s" signals acknowledged OK (signal workload)
}

type bench struct {
	cfg      config
	p        *pool
	errs     *errCounter
	tq       string
	runTag   string
	identity string
	t0       time.Time

	mu  sync.Mutex
	wfs map[string]*wfState
	all []*wfState // every workflow started, for sampling

	// results
	resMu      sync.Mutex
	latencies  []time.Duration // unit latencies, units begun after warm-up
	latAll     []time.Duration // unit latencies, all units
	unitTimes  []time.Duration // completion offsets from t0 of every unit
	lateDriver []time.Duration // timer: fire seen by the worker − (StartTimer sent + delay)
	lateHist   []time.Duration // timer: TimerFired.event_time − TimerStarted.event_time − delay

	eagerTasks     atomic.Int64
	polledActTasks atomic.Int64
	wftHandled     atomic.Int64
	inlineChecked  atomic.Int64
	inlineFailed   atomic.Int64
	inlineSamples  []string
	unexpectedWFTs atomic.Int64
}

type result struct {
	Workload           string         `json:"workload"`
	Concurrency        int            `json:"concurrency"`
	Eager              bool           `json:"eager_activity_requested"`
	TaskQueue          string         `json:"task_queue"`
	WindowS            float64        `json:"window_s"`
	ElapsedS           float64        `json:"elapsed_s"`
	UnitsTotal         int            `json:"units_total"`
	UnitsWindow        int            `json:"units_window"`
	Throughput         float64        `json:"throughput_per_s"`
	Latency            latencyStats   `json:"latency"`
	LatencyAll         latencyStats   `json:"latency_all"`
	ThroughputOverall  float64        `json:"throughput_overall_per_s"`
	TimerLateDriver    *latencyStats  `json:"timer_lateness_driver,omitempty"`
	TimerLateHistory   *latencyStats  `json:"timer_lateness_history,omitempty"`
	Errors             map[string]int `json:"errors"`
	ErrorCount         int            `json:"error_count"`
	ErrorSamples       []string       `json:"error_samples"`
	WorkflowsStarted   int            `json:"workflows_started"`
	WFTHandled         int64          `json:"workflow_tasks_handled"`
	EagerActTasks      int64          `json:"eager_activity_tasks"`
	PolledActTasks     int64          `json:"polled_activity_tasks"`
	UnexpectedWFTs     int64          `json:"unexpected_workflow_tasks"`
	InlineChecked      int64          `json:"inline_checked"`
	InlineFailed       int64          `json:"inline_failed"`
	InlineSamples      []string       `json:"inline_failure_samples"`
	VerifySampled      int            `json:"verify_sampled"`
	VerifyFailed       int            `json:"verify_failed"`
	VerifySamples      []string       `json:"verify_failure_samples"`
	DriverCPUS         float64        `json:"driver_cpu_s"`
	DriverCPUPerUnitMs float64        `json:"driver_cpu_per_unit_ms"`
}

func randTag() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newBench(cfg config) (*bench, error) {
	streams := 2*cfg.Concurrency + 2
	if cfg.Conns <= 0 {
		cfg.Conns = 1 + streams/64
	}
	p, err := dialPool(cfg.Addr, cfg.Conns)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	tag := randTag()
	return &bench{
		cfg:      cfg,
		p:        p,
		errs:     newErrCounter(),
		runTag:   tag,
		tq:       fmt.Sprintf("bench-%s-%s", cfg.Workload, tag),
		identity: fmt.Sprintf("%d@%s-bench-driver", os.Getpid(), host),
		wfs:      map[string]*wfState{},
	}, nil
}

func (b *bench) register(s *wfState) {
	b.mu.Lock()
	b.wfs[s.id] = s
	b.all = append(b.all, s)
	b.mu.Unlock()
}

func (b *bench) lookup(id string) *wfState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wfs[id]
}

func (b *bench) recordUnit(begun time.Time, end time.Time) {
	b.resMu.Lock()
	b.unitTimes = append(b.unitTimes, end.Sub(b.t0))
	b.latAll = append(b.latAll, end.Sub(begun))
	if begun.Sub(b.t0) >= b.cfg.Warmup {
		b.latencies = append(b.latencies, end.Sub(begun))
	}
	b.resMu.Unlock()
}

func (b *bench) inlineFail(format string, args ...any) {
	b.inlineFailed.Add(1)
	b.resMu.Lock()
	if len(b.inlineSamples) < maxErrorSamples {
		b.inlineSamples = append(b.inlineSamples, fmt.Sprintf(format, args...))
	}
	b.resMu.Unlock()
}

func (b *bench) startWorkflow(ctx context.Context, wfType string, n int) (*wfState, error) {
	s := &wfState{id: fmt.Sprintf("%s-%s-%d", b.cfg.Workload, b.runTag, n), done: make(chan struct{})}
	b.register(s)
	s.started = time.Now()
	cctx, cancel := unaryCtx(ctx)
	defer cancel()
	resp, err := b.p.get().StartWorkflowExecution(cctx, &workflowservice.StartWorkflowExecutionRequest{
		Namespace:           b.cfg.Namespace,
		WorkflowId:          s.id,
		WorkflowType:        &commonpb.WorkflowType{Name: wfType},
		TaskQueue:           normalQueue(b.tq),
		Input:               jsonPayloads("in"),
		WorkflowTaskTimeout: dur(10 * time.Second),
		Identity:            b.identity,
		RequestId:           s.id, // idempotent if retried
	})
	if err != nil {
		b.errs.add("StartWorkflowExecution", err)
		return s, err
	}
	s.runID = resp.GetRunId()
	return s, nil
}

// ---- worker side -------------------------------------------------------------------

func (b *bench) runWFTPoller(ctx context.Context) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, longPollTimeout)
		resp, err := b.p.get().PollWorkflowTaskQueue(pctx, &workflowservice.PollWorkflowTaskQueueRequest{
			Namespace: b.cfg.Namespace,
			TaskQueue: normalQueue(b.tq),
			Identity:  b.identity,
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.errs.add("PollWorkflowTaskQueue", err)
			sleepCtx(ctx, 100*time.Millisecond) // don't spin on a failing server
			continue
		}
		if len(resp.GetTaskToken()) == 0 {
			continue // empty long poll
		}
		b.handleWFT(ctx, resp)
	}
}

func (b *bench) runActivityPoller(ctx context.Context) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, longPollTimeout)
		resp, err := b.p.get().PollActivityTaskQueue(pctx, &workflowservice.PollActivityTaskQueueRequest{
			Namespace: b.cfg.Namespace,
			TaskQueue: normalQueue(b.tq),
			Identity:  b.identity,
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.errs.add("PollActivityTaskQueue", err)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		if len(resp.GetTaskToken()) == 0 {
			continue
		}
		b.polledActTasks.Add(1)
		b.completeActivity(ctx, resp.GetTaskToken())
	}
}

func (b *bench) completeActivity(ctx context.Context, token []byte) {
	cctx, cancel := unaryCtx(ctx)
	defer cancel()
	_, err := b.p.get().RespondActivityTaskCompleted(cctx, &workflowservice.RespondActivityTaskCompletedRequest{
		Namespace: b.cfg.Namespace,
		TaskToken: token,
		Result:    jsonPayloads("act-out"),
		Identity:  b.identity,
	})
	if err != nil {
		b.errs.add("RespondActivityTaskCompleted", err)
	}
}

func completeCmd() *commandpb.Command {
	return &commandpb.Command{
		CommandType: enumspb.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
		Attributes: &commandpb.Command_CompleteWorkflowExecutionCommandAttributes{
			CompleteWorkflowExecutionCommandAttributes: &commandpb.CompleteWorkflowExecutionCommandAttributes{Result: jsonPayloads("out")},
		},
	}
}

func (b *bench) trace(format string, args ...any) {
	if b.cfg.Trace != nil {
		b.mu.Lock()
		fmt.Fprintf(b.cfg.Trace, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000000")}, args...)...)
		b.mu.Unlock()
	}
}

func (b *bench) handleWFT(ctx context.Context, resp *workflowservice.PollWorkflowTaskQueueResponse) {
	b.wftHandled.Add(1)
	received := time.Now()
	b.trace("wft %s started=%d attempt=%d events=%d", resp.GetWorkflowExecution().GetWorkflowId(), resp.GetStartedEventId(), resp.GetAttempt(), len(resp.GetHistory().GetEvents()))
	events := resp.GetHistory().GetEvents()
	if len(resp.GetNextPageToken()) > 0 {
		var err error
		events, err = fetchHistory(ctx, b.p, b.cfg.Namespace, resp.GetWorkflowExecution(), events, resp.GetNextPageToken())
		if err != nil {
			b.errs.add("GetWorkflowExecutionHistory", err)
			return // the task times out and is retried; verification will flag it
		}
	}
	id := resp.GetWorkflowExecution().GetWorkflowId()
	st := b.lookup(id)
	if resp.GetAttempt() > 1 {
		b.inlineFail("%s: workflow task attempt %d", id, resp.GetAttempt())
	}

	var (
		has     = map[enumspb.EventType]int{}
		doneSig bool
		timerAt time.Time
		firedAt time.Time
	)
	for _, e := range events {
		has[e.GetEventType()]++
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			if e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == "done" {
				doneSig = true
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			timerAt = e.GetEventTime().AsTime()
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			firedAt = e.GetEventTime().AsTime()
		}
	}

	var cmds []*commandpb.Command
	complete := false
	switch resp.GetWorkflowType().GetName() {
	case "bench-activity":
		switch {
		case has[enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED] == 0:
			cmds = append(cmds, &commandpb.Command{
				CommandType: enumspb.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
				Attributes: &commandpb.Command_ScheduleActivityTaskCommandAttributes{
					ScheduleActivityTaskCommandAttributes: &commandpb.ScheduleActivityTaskCommandAttributes{
						ActivityId:             "1",
						ActivityType:           &commonpb.ActivityType{Name: "bench-act"},
						TaskQueue:              normalQueue(b.tq),
						Input:                  jsonPayloads("act-in"),
						ScheduleToCloseTimeout: dur(60 * time.Second),
						StartToCloseTimeout:    dur(30 * time.Second),
						RequestEagerExecution:  b.cfg.Eager,
					},
				},
			})
		case has[enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED] > 0:
			complete = true
			b.inlineChecked.Add(1)
			if err := checkExact(events, expectActivity[:len(expectActivity)-2]); err != nil {
				b.inlineFail("%s: %v", id, err)
			}
		default:
			b.unexpectedWFTs.Add(1)
		}
	case "bench-timer":
		switch {
		case has[enumspb.EVENT_TYPE_TIMER_STARTED] == 0:
			if st != nil {
				b.mu.Lock()
				st.timerSent = time.Now()
				b.mu.Unlock()
			}
			cmds = append(cmds, &commandpb.Command{
				CommandType: enumspb.COMMAND_TYPE_START_TIMER,
				Attributes: &commandpb.Command_StartTimerCommandAttributes{
					StartTimerCommandAttributes: &commandpb.StartTimerCommandAttributes{
						TimerId:            "t1",
						StartToFireTimeout: dur(b.cfg.TimerDelay),
					},
				},
			})
		case has[enumspb.EVENT_TYPE_TIMER_FIRED] > 0:
			complete = true
			b.inlineChecked.Add(1)
			if err := checkExact(events, expectTimer[:len(expectTimer)-2]); err != nil {
				b.inlineFail("%s: %v", id, err)
			}
			b.resMu.Lock()
			b.lateHist = append(b.lateHist, firedAt.Sub(timerAt)-b.cfg.TimerDelay)
			b.resMu.Unlock()
			if st != nil {
				b.mu.Lock()
				sent := st.timerSent
				b.mu.Unlock()
				if !sent.IsZero() {
					b.resMu.Lock()
					b.lateDriver = append(b.lateDriver, received.Sub(sent)-b.cfg.TimerDelay)
					b.resMu.Unlock()
				}
			}
		default:
			b.unexpectedWFTs.Add(1)
		}
	case "bench-signal":
		complete = doneSig
	default:
		b.unexpectedWFTs.Add(1)
	}
	if complete {
		cmds = append(cmds, completeCmd())
	}

	cctx, cancel := unaryCtx(ctx)
	out, err := b.p.get().RespondWorkflowTaskCompleted(cctx, &workflowservice.RespondWorkflowTaskCompletedRequest{
		Namespace: b.cfg.Namespace,
		TaskToken: resp.GetTaskToken(),
		Commands:  cmds,
		Identity:  b.identity,
	})
	cancel()
	b.trace("respond %s started=%d err=%v", resp.GetWorkflowExecution().GetWorkflowId(), resp.GetStartedEventId(), err)
	if err != nil {
		b.errs.add("RespondWorkflowTaskCompleted", err)
		return
	}
	for _, at := range out.GetActivityTasks() {
		b.eagerTasks.Add(1)
		b.completeActivity(ctx, at.GetTaskToken())
	}
	if complete && st != nil {
		select {
		case <-st.done:
		default:
			close(st.done)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ---- workloads -----------------------------------------------------------------------

func (b *bench) stopAt() time.Time { return b.t0.Add(b.cfg.Warmup + b.cfg.Duration) }

func (b *bench) startWorkers(ctx context.Context, wg *sync.WaitGroup, activity bool) {
	n := b.cfg.Pollers
	if n <= 0 {
		n = b.cfg.Concurrency
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); b.runWFTPoller(ctx) }()
		if activity {
			wg.Add(1)
			go func() { defer wg.Done(); b.runActivityPoller(ctx) }()
		}
	}
}

// pollerHeadStart lets the pollers reach the server before the first workflow is started,
// as with a real worker that is up before clients submit work. The measurement clock (t0)
// restarts after it. (Temporal's dev server was seen to record a workflow task as started
// for polls of the very first burst on a new task queue without ever answering them, so
// those workflows finished 10 s late; see bench/README.md.)
func (b *bench) pollerHeadStart(ctx context.Context) {
	if b.cfg.HeadStart > 0 {
		sleepCtx(ctx, b.cfg.HeadStart)
		b.t0 = time.Now()
	}
}

// rampDelay spreads the first request of the `concurrency` loops evenly over the warm-up,
// so a run does not open with one synchronized burst of `concurrency` starts.
func (b *bench) rampDelay(ctx context.Context, i int) {
	if b.cfg.Concurrency > 1 && b.cfg.Warmup > 0 {
		sleepCtx(ctx, time.Duration(int64(b.cfg.Warmup)*int64(i)/int64(b.cfg.Concurrency)))
	}
}

// runClosedLoop: `concurrency` starters, each starts a workflow, waits until the worker
// side completes it, records the end-to-end latency, and starts the next one.
func (b *bench) runClosedLoop(ctx context.Context, wfType string) {
	var workers sync.WaitGroup
	wctx, stopWorkers := context.WithCancel(ctx)
	b.startWorkers(wctx, &workers, wfType == "bench-activity")
	b.pollerHeadStart(ctx)
	var seq atomic.Int64
	var starters sync.WaitGroup
	for i := 0; i < b.cfg.Concurrency; i++ {
		starters.Add(1)
		go func(i int) {
			defer starters.Done()
			b.rampDelay(ctx, i)
			for ctx.Err() == nil && time.Now().Before(b.stopAt()) {
				n := int(seq.Add(1))
				if b.cfg.MaxUnits > 0 && n > b.cfg.MaxUnits {
					return
				}
				s, err := b.startWorkflow(ctx, wfType, n)
				if err != nil {
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				t := time.NewTimer(b.cfg.WfTimeout)
				select {
				case <-s.done:
					b.recordUnit(s.started, time.Now())
				case <-t.C:
					b.errs.addf("WorkflowNotCompleted", "%s not completed within %s", s.id, b.cfg.WfTimeout)
				case <-ctx.Done():
				}
				t.Stop()
			}
		}(i)
	}
	starters.Wait()
	stopWorkers()
	workers.Wait()
}

// runStart: StartWorkflowExecution throughput. The workflows are left open on a task
// queue nobody polls (no timeouts are set, so they cost the server nothing later).
func (b *bench) runStart(ctx context.Context) {
	var seq atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Concurrency; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b.rampDelay(ctx, i)
			for ctx.Err() == nil && time.Now().Before(b.stopAt()) {
				n := int(seq.Add(1))
				if b.cfg.MaxUnits > 0 && n > b.cfg.MaxUnits {
					return
				}
				s, err := b.startWorkflow(ctx, "bench-start", n)
				if err != nil {
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				b.recordUnit(s.started, time.Now())
			}
		}(i)
	}
	wg.Wait()
}

// runSysInfo: GetSystemInfo in a closed loop: the server's RPC floor (no storage).
func (b *bench) runSysInfo(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Concurrency; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b.rampDelay(ctx, i)
			for n := 0; ctx.Err() == nil && time.Now().Before(b.stopAt()) && (b.cfg.MaxUnits == 0 || n < b.cfg.MaxUnits); n++ {
				begun := time.Now()
				cctx, cancel := unaryCtx(ctx)
				_, err := b.p.get().GetSystemInfo(cctx, &workflowservice.GetSystemInfoRequest{})
				cancel()
				if err != nil {
					b.errs.add("GetSystemInfo", err)
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				b.recordUnit(begun, time.Now())
			}
		}(i)
	}
	wg.Wait()
}

// runSignal: one open workflow per concurrency slot; each slot sends signals to its
// workflow back to back (the worker answers each resulting workflow task with no
// commands), then a "done" signal, on which the worker completes the workflow.
func (b *bench) runSignal(ctx context.Context) {
	var workers sync.WaitGroup
	wctx, stopWorkers := context.WithCancel(ctx)
	b.startWorkers(wctx, &workers, false)
	b.pollerHeadStart(ctx)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Concurrency; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b.rampDelay(ctx, i)
			s, err := b.startWorkflow(ctx, "bench-signal", i)
			if err != nil {
				return
			}
			signal := func(name string) error {
				cctx, cancel := unaryCtx(ctx)
				defer cancel()
				_, err := b.p.get().SignalWorkflowExecution(cctx, &workflowservice.SignalWorkflowExecutionRequest{
					Namespace:         b.cfg.Namespace,
					WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: s.id, RunId: s.runID},
					SignalName:        name,
					Input:             jsonPayloads("sig"),
					Identity:          b.identity,
					RequestId:         randTag() + randTag(),
				})
				if err != nil {
					b.errs.add("SignalWorkflowExecution", err)
				}
				return err
			}
			for ctx.Err() == nil && time.Now().Before(b.stopAt()) {
				if b.cfg.MaxUnits > 0 && int(sent.Add(1)) > b.cfg.MaxUnits {
					break
				}
				begun := time.Now()
				if err := signal("s"); err != nil {
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				atomic.AddInt64(&s.signals, 1)
				b.recordUnit(begun, time.Now())
			}
			if signal("done") != nil {
				return
			}
			t := time.NewTimer(b.cfg.WfTimeout)
			defer t.Stop()
			select {
			case <-s.done:
			case <-t.C:
				b.errs.addf("WorkflowNotCompleted", "%s not completed within %s after the done signal", s.id, b.cfg.WfTimeout)
			case <-ctx.Done():
			}
		}(i)
	}
	wg.Wait()
	stopWorkers()
	workers.Wait()
}

// verify fetches the full history of a random sample of the workflows started and
// checks it event by event.
func (b *bench) verify(ctx context.Context) (int, int, []string) {
	b.mu.Lock()
	var all []*wfState
	for _, s := range b.all {
		if s.runID != "" { // a failed start is already counted as an RPC error
			all = append(all, s)
		}
	}
	b.mu.Unlock()
	mrand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	n := b.cfg.VerifySample
	if n > len(all) {
		n = len(all)
	}
	failed := 0
	var samples []string
	for _, s := range all[:n] {
		var err error
		var events []*historypb.HistoryEvent
		events, err = fetchHistory(ctx, b.p, b.cfg.Namespace, &commonpb.WorkflowExecution{WorkflowId: s.id, RunId: s.runID}, nil, nil)
		if err == nil {
			switch b.cfg.Workload {
			case "start":
				err = checkExact(events, expectStart)
			case "activity":
				err = checkExact(events, expectActivity)
			case "timer":
				err = checkExact(events, expectTimer)
			case "signal":
				err = checkSignal(events, atomic.LoadInt64(&s.signals))
			}
		} else {
			b.errs.add("GetWorkflowExecutionHistory", err)
		}
		if err != nil {
			failed++
			if len(samples) < maxErrorSamples {
				samples = append(samples, fmt.Sprintf("%s: %v", s.id, err))
			}
		}
	}
	return n, failed, samples
}

func (b *bench) run(ctx context.Context) (*result, error) {
	cpu0 := selfCPU()
	b.t0 = time.Now()
	switch b.cfg.Workload {
	case "start":
		b.runStart(ctx)
	case "activity":
		b.runClosedLoop(ctx, "bench-activity")
	case "timer":
		b.runClosedLoop(ctx, "bench-timer")
	case "signal":
		b.runSignal(ctx)
	case "sysinfo":
		b.runSysInfo(ctx)
	default:
		return nil, fmt.Errorf("unknown workload %q", b.cfg.Workload)
	}
	elapsed := time.Since(b.t0)
	cpu := selfCPU() - cpu0
	sampled, vfailed, vsamples := b.verify(ctx)

	window := b.stopAt().Sub(b.t0.Add(b.cfg.Warmup))
	if elapsed-b.cfg.Warmup < window {
		window = elapsed - b.cfg.Warmup // ended early (max units reached)
	}
	inWindow := 0
	for _, t := range b.unitTimes {
		if t >= b.cfg.Warmup && t <= b.cfg.Warmup+window {
			inWindow++
		}
	}
	errs, esamples := b.errs.snapshot()
	r := &result{
		Workload:         b.cfg.Workload,
		Concurrency:      b.cfg.Concurrency,
		Eager:            b.cfg.Eager,
		TaskQueue:        b.tq,
		WindowS:          window.Seconds(),
		ElapsedS:         elapsed.Seconds(),
		UnitsTotal:       len(b.unitTimes),
		UnitsWindow:      inWindow,
		Latency:          summarize(b.latencies),
		LatencyAll:       summarize(b.latAll),
		Errors:           errs,
		ErrorCount:       b.errs.total(),
		ErrorSamples:     esamples,
		WorkflowsStarted: len(b.all),
		WFTHandled:       b.wftHandled.Load(),
		EagerActTasks:    b.eagerTasks.Load(),
		PolledActTasks:   b.polledActTasks.Load(),
		UnexpectedWFTs:   b.unexpectedWFTs.Load(),
		InlineChecked:    b.inlineChecked.Load(),
		InlineFailed:     b.inlineFailed.Load(),
		InlineSamples:    b.inlineSamples,
		VerifySampled:    sampled,
		VerifyFailed:     vfailed,
		VerifySamples:    vsamples,
		DriverCPUS:       cpu,
	}
	if window > 0 {
		r.Throughput = float64(inWindow) / window.Seconds()
	}
	if elapsed > 0 {
		r.ThroughputOverall = float64(r.UnitsTotal) / elapsed.Seconds()
	}
	if r.UnitsTotal > 0 {
		r.DriverCPUPerUnitMs = cpu * 1000 / float64(r.UnitsTotal)
	}
	if b.cfg.Workload == "timer" {
		d, h := summarize(b.lateDriver), summarize(b.lateHist)
		r.TimerLateDriver, r.TimerLateHistory = &d, &h
	}
	if math.IsNaN(r.Throughput) {
		r.Throughput = 0
	}
	return r, nil
}
