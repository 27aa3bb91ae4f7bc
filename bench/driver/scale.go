package main

// The scale benchmark's subcommands (bench/scale/):
//
//	bench-driver park  -addr A -from K -count N   parks runs scale-K .. scale-(K+N-1): even ones
//	                                              wait on a 1-24 h timer, odd ones on a signal
//	bench-driver probe -addr A -parked N          signal latency against random parked odd runs,
//	                                              then timer lateness and start latency at a
//	                                              steady start rate
//	bench-driver namespace -addr A -name default  registers a namespace (AlreadyExists is fine)
//
// Each prints one JSON object on stdout and progress on stderr.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	commandpb "go.temporal.io/api/command/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	scaleTimerType  = "scale-timer"  // parked on a long timer
	scaleSignalType = "scale-signal" // parked waiting for a signal
	probeTimerType  = "scale-probe-timer"
)

// scaleID is the workflow id of parked run n. Even n wait on a timer, odd n on a signal,
// so the probe can pick signal-waiting runs without a list.
func scaleID(prefix string, n int64) string { return fmt.Sprintf("%s-%d", prefix, n) }

func writeJSON(v any, out string) {
	js, _ := json.MarshalIndent(v, "", "  ")
	fmt.Println(string(js))
	if out != "" {
		_ = os.WriteFile(out, append(js, '\n'), 0o644)
	}
}

func identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s-bench-driver", os.Getpid(), host)
}

// latRec collects durations from many goroutines.
type latRec struct {
	mu sync.Mutex
	ds []time.Duration
}

func (l *latRec) add(d time.Duration) { l.mu.Lock(); l.ds = append(l.ds, d); l.mu.Unlock() }
func (l *latRec) stats() latencyStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return summarize(l.ds)
}

// scaleWorker polls one task queue and answers every workflow task. decide returns the
// commands for a task (nil: complete the task with no commands, which leaves the run open
// and waiting) and is called with the task's full history.
type scaleWorker struct {
	p        *pool
	ns, tq   string
	identity string
	errs     *errCounter
	handled  atomic.Int64
	retries  atomic.Int64 // tasks with attempt > 1
	lastTask atomic.Int64 // unix nanos of the last task received
	decide   func(resp *workflowservice.PollWorkflowTaskQueueResponse) []*commandpb.Command
	after    func(resp *workflowservice.PollWorkflowTaskQueueResponse, ok bool)
}

func (w *scaleWorker) run(ctx context.Context) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, longPollTimeout)
		resp, err := w.p.get().PollWorkflowTaskQueue(pctx, &workflowservice.PollWorkflowTaskQueueRequest{
			Namespace: w.ns, TaskQueue: normalQueue(w.tq), Identity: w.identity,
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.errs.add("PollWorkflowTaskQueue", err)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		if len(resp.GetTaskToken()) == 0 {
			continue
		}
		w.lastTask.Store(time.Now().UnixNano())
		w.handled.Add(1)
		if resp.GetAttempt() > 1 {
			w.retries.Add(1)
		}
		if len(resp.GetNextPageToken()) > 0 {
			events, err := fetchHistory(ctx, w.p, w.ns, resp.GetWorkflowExecution(), resp.GetHistory().GetEvents(), resp.GetNextPageToken())
			if err != nil {
				w.errs.add("GetWorkflowExecutionHistory", err)
				continue
			}
			resp.History.Events = events
		}
		cmds := w.decide(resp)
		cctx, cc := unaryCtx(ctx)
		_, err = w.p.get().RespondWorkflowTaskCompleted(cctx, &workflowservice.RespondWorkflowTaskCompletedRequest{
			Namespace: w.ns, TaskToken: resp.GetTaskToken(), Commands: cmds, Identity: w.identity,
		})
		cc()
		if err != nil && ctx.Err() == nil {
			w.errs.add("RespondWorkflowTaskCompleted", err)
		}
		if w.after != nil {
			w.after(resp, err == nil)
		}
	}
}

func hasEvent(resp *workflowservice.PollWorkflowTaskQueueResponse, t enumspb.EventType) bool {
	for _, e := range resp.GetHistory().GetEvents() {
		if e.GetEventType() == t {
			return true
		}
	}
	return false
}

func timerCmd(id string, d time.Duration) *commandpb.Command {
	return &commandpb.Command{
		CommandType: enumspb.COMMAND_TYPE_START_TIMER,
		Attributes: &commandpb.Command_StartTimerCommandAttributes{
			StartTimerCommandAttributes: &commandpb.StartTimerCommandAttributes{TimerId: id, StartToFireTimeout: dur(d)},
		},
	}
}

// parkDecide: the first task of a timer run starts its long timer; every other task
// (a signal run's first task, tasks caused by signals, a long timer that fired) is completed
// with no commands, so the run stays open.
func parkDecide(minD, maxD time.Duration) func(*workflowservice.PollWorkflowTaskQueueResponse) []*commandpb.Command {
	return func(resp *workflowservice.PollWorkflowTaskQueueResponse) []*commandpb.Command {
		if resp.GetWorkflowType().GetName() == scaleTimerType && !hasEvent(resp, enumspb.EVENT_TYPE_TIMER_STARTED) {
			d := minD
			if maxD > minD {
				d += time.Duration(mrand.Int64N(int64(maxD - minD)))
			}
			return []*commandpb.Command{timerCmd("park", d.Truncate(time.Second))}
		}
		return nil
	}
}

type parkResult struct {
	From             int64          `json:"from"`
	Count            int64          `json:"count"`
	Started          int64          `json:"started"`
	Parked           int64          `json:"parked"` // first workflow task completed
	TimerRuns        int64          `json:"timer_runs"`
	SignalRuns       int64          `json:"signal_runs"`
	FirstTaskMissing int64          `json:"first_task_missing"` // started, first task not seen within -task-wait
	ElapsedS         float64        `json:"elapsed_s"`
	RatePerS         float64        `json:"rate_per_s"`
	StartLatency     latencyStats   `json:"start_latency"`
	RespondLatency   latencyStats   `json:"task_latency"` // start OK -> first task answered OK
	TaskRetries      int64          `json:"workflow_task_retries"`
	Errors           map[string]int `json:"errors"`
	ErrorCount       int            `json:"error_count"`
	ErrorSamples     []string       `json:"error_samples"`
	DriverCPUS       float64        `json:"driver_cpu_s"`
}

func cmdPark(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("park", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7233", "server gRPC address (loopback only)")
	ns := fs.String("namespace", "default", "namespace")
	tq := fs.String("queue", "scale", "task queue of the parked runs")
	prefix := fs.String("prefix", "scale", "workflow id prefix (ids are PREFIX-n)")
	from := fs.Int64("from", 0, "first n")
	count := fs.Int64("count", 10000, "runs to park")
	conc := fs.Int("concurrency", 64, "runs in flight (started, first task not yet answered)")
	pollers := fs.Int("pollers", 32, "workflow task pollers")
	minD := fs.Duration("timer-min", time.Hour, "shortest park timer")
	maxD := fs.Duration("timer-max", 24*time.Hour, "longest park timer")
	taskWait := fs.Duration("task-wait", 60*time.Second, "give up waiting for a run's first task after this")
	timeout := fs.Duration("timeout", 3*time.Hour, "bound on the whole invocation")
	out := fs.String("out", "", "also write the JSON result to this file")
	_ = fs.Parse(args)
	if *count < 0 || *conc < 1 || *pollers < 1 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "bad -count/-concurrency/-pollers/-timeout")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p, err := dialPool(*addr, 1+(*conc+*pollers)/64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.close()
	errs := newErrCounter()
	id := identity()
	cpu0 := selfCPU()

	var (
		pendMu  sync.Mutex
		pending = map[string]time.Time{} // started, first task not yet answered
		sem     = make(chan struct{}, *conc)
		parked  atomic.Int64
		started atomic.Int64
		missing atomic.Int64
		startL  latRec
		taskL   latRec
	)
	release := func(wid string, ok bool) {
		pendMu.Lock()
		t0, found := pending[wid]
		if found {
			delete(pending, wid)
		}
		pendMu.Unlock()
		if found {
			if ok {
				parked.Add(1)
				taskL.add(time.Since(t0))
			} else {
				missing.Add(1)
			}
			<-sem
		}
	}
	w := &scaleWorker{p: p, ns: *ns, tq: *tq, identity: id, errs: errs, decide: parkDecide(*minD, *maxD)}
	w.after = func(resp *workflowservice.PollWorkflowTaskQueueResponse, ok bool) {
		if ok {
			release(resp.GetWorkflowExecution().GetWorkflowId(), true)
		}
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	var workers sync.WaitGroup
	for i := 0; i < *pollers; i++ {
		workers.Add(1)
		go func() { defer workers.Done(); w.run(wctx) }()
	}
	// Sweeper: a run whose first task never came (lost, or answered by a previous
	// invocation of a run started twice) frees its slot after -task-wait.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			var old []string
			pendMu.Lock()
			for k, v := range pending {
				if time.Since(v) > *taskWait {
					old = append(old, k)
				}
			}
			pendMu.Unlock()
			for _, k := range old {
				errs.addf("FirstTaskMissing", "%s: no first workflow task within %s", k, *taskWait)
				release(k, false)
			}
		}
	}()
	t0 := time.Now()
	// Progress on stderr.
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			n := parked.Load()
			fmt.Fprintf(os.Stderr, "park: %d/%d parked, %.0f/s, errors=%d\n", n, *count, float64(n)/time.Since(t0).Seconds(), errs.total())
		}
	}()

	var next atomic.Int64
	next.Store(*from)
	end := *from + *count
	var starters sync.WaitGroup
	for i := 0; i < *conc; i++ {
		starters.Add(1)
		go func() {
			defer starters.Done()
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if n >= end {
					return
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				wid := scaleID(*prefix, n)
				wtype := scaleTimerType
				if n%2 == 1 {
					wtype = scaleSignalType
				}
				pendMu.Lock()
				pending[wid] = time.Now()
				pendMu.Unlock()
				ok := false
				for attempt := 0; attempt < 10 && ctx.Err() == nil; attempt++ {
					b := time.Now()
					cctx, cc := unaryCtx(ctx)
					_, err := p.get().StartWorkflowExecution(cctx, &workflowservice.StartWorkflowExecutionRequest{
						Namespace: *ns, WorkflowId: wid, RequestId: wid,
						WorkflowType:        &commonpb.WorkflowType{Name: wtype},
						TaskQueue:           normalQueue(*tq),
						Input:               jsonPayloads("park"),
						WorkflowTaskTimeout: dur(10 * time.Second),
						Identity:            id,
					})
					cc()
					if err == nil {
						startL.add(time.Since(b))
						ok = true
						break
					}
					errs.add("StartWorkflowExecution", err)
					if status.Code(err) == codes.AlreadyExists {
						break // started by an earlier invocation: not counted as parked here
					}
					sleepCtx(ctx, 200*time.Millisecond)
				}
				if ok {
					started.Add(1)
				} else {
					pendMu.Lock()
					delete(pending, wid)
					pendMu.Unlock()
					<-sem
				}
			}
		}()
	}
	starters.Wait()
	// Drain: every started run's first task answered (or given up on).
	for ctx.Err() == nil {
		pendMu.Lock()
		n := len(pending)
		pendMu.Unlock()
		if n == 0 {
			break
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	elapsed := time.Since(t0)
	stopWorkers()
	workers.Wait()
	e, samples := errs.snapshot()
	r := parkResult{
		From: *from, Count: *count, Started: started.Load(), Parked: parked.Load(),
		FirstTaskMissing: missing.Load(), ElapsedS: elapsed.Seconds(),
		StartLatency: startL.stats(), RespondLatency: taskL.stats(), TaskRetries: w.retries.Load(),
		Errors: e, ErrorCount: errs.total(), ErrorSamples: samples, DriverCPUS: selfCPU() - cpu0,
	}
	for n := *from; n < end; n++ {
		if n%2 == 0 {
			r.TimerRuns++
		} else {
			r.SignalRuns++
		}
	}
	if elapsed > 0 {
		r.RatePerS = float64(r.Parked) / elapsed.Seconds()
	}
	writeJSON(r, *out)
	fmt.Fprintf(os.Stderr, "park: %d parked of %d in %.1fs (%.0f/s), start p50=%.1fms p99=%.1fms, errors=%d\n",
		r.Parked, r.Count, r.ElapsedS, r.RatePerS, r.StartLatency.P50Ms, r.StartLatency.P99Ms, r.ErrorCount)
	for _, s := range samples {
		fmt.Fprintln(os.Stderr, "  error:", s)
	}
	if ctx.Err() != nil && r.Parked < r.Count {
		return 1
	}
	return 0
}

type probeResult struct {
	Parked int64 `json:"parked"`
	Signal struct {
		Sent        int          `json:"sent"`
		OK          int          `json:"ok"`
		Concurrency int          `json:"concurrency"`
		RatePerS    float64      `json:"rate_per_s"`
		Latency     latencyStats `json:"latency"`
		TasksDone   int64        `json:"workflow_tasks_answered"`
	} `json:"signal"`
	Timer struct {
		Planned        int          `json:"planned"`
		Started        int          `json:"started"`
		Completed      int64        `json:"completed"`
		TargetRate     float64      `json:"target_rate_per_s"`
		StartRate      float64      `json:"achieved_start_rate_per_s"`
		DelayS         float64      `json:"timer_s"`
		LatenessHist   latencyStats `json:"lateness_history"` // TimerFired - TimerStarted - delay
		LatenessDriver latencyStats `json:"lateness_driver"`  // task received - (StartTimer answered + delay)
		StartLatency   latencyStats `json:"start_latency"`
		StartsBehind   int          `json:"starts_behind_schedule_over_50ms"`
		NotCompleted   int64        `json:"not_completed"`
	} `json:"timer"`
	TaskRetries  int64          `json:"workflow_task_retries"`
	Errors       map[string]int `json:"errors"`
	ErrorCount   int            `json:"error_count"`
	ErrorSamples []string       `json:"error_samples"`
	DriverCPUS   float64        `json:"driver_cpu_s"`
}

func cmdProbe(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7233", "server gRPC address (loopback only)")
	ns := fs.String("namespace", "default", "namespace")
	tq := fs.String("queue", "scale", "task queue of the parked runs (their signal tasks are answered here)")
	prefix := fs.String("prefix", "scale", "workflow id prefix of the parked runs")
	parkedN := fs.Int64("parked", 0, "parked runs are PREFIX-0 .. PREFIX-(N-1); odd ones wait for signals")
	nSig := fs.Int("signals", 5000, "signals to send (0: skip)")
	sigConc := fs.Int("signal-concurrency", 16, "signals in flight")
	rate := fs.Float64("timer-rate", 1000, "timer workflows started per second")
	tdur := fs.Duration("timer-duration", 10*time.Second, "how long to start timer workflows (0: skip)")
	delay := fs.Duration("timer", 2*time.Second, "timer of each probe workflow")
	startWorkers := fs.Int("start-workers", 64, "goroutines issuing the timed starts")
	pollers := fs.Int("pollers", 64, "workflow task pollers on the probe's timer queue")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole invocation")
	out := fs.String("out", "", "also write the JSON result to this file")
	_ = fs.Parse(args)
	if *nSig < 0 || *sigConc < 1 || *rate <= 0 || *tdur < 0 || *startWorkers < 1 || *pollers < 1 {
		fmt.Fprintln(os.Stderr, "bad flags")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	sigPollers := 16
	p, err := dialPool(*addr, 1+(*sigConc+sigPollers+*startWorkers+*pollers)/64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.close()
	errs := newErrCounter()
	id := identity()
	cpu0 := selfCPU()
	var r probeResult
	r.Parked = *parkedN

	// Pollers on the parked runs' queue for the whole probe: a signalled run gets a task,
	// answered with no commands, so it goes back to waiting.
	parkW := &scaleWorker{p: p, ns: *ns, tq: *tq, identity: id, errs: errs, decide: parkDecide(time.Hour, 24*time.Hour)}
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var workers sync.WaitGroup
	for i := 0; i < sigPollers; i++ {
		workers.Add(1)
		go func() { defer workers.Done(); parkW.run(wctx) }()
	}

	// (a) signals to random signal-waiting parked runs.
	signalRuns := *parkedN / 2
	if *nSig > 0 && signalRuns > 0 {
		var sigL latRec
		var left atomic.Int64
		left.Store(int64(*nSig))
		var ok atomic.Int64
		t0 := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < *sigConc; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && left.Add(-1) >= 0 {
					n := 2*mrand.Int64N(signalRuns) + 1
					b := time.Now()
					cctx, cc := unaryCtx(ctx)
					_, err := p.get().SignalWorkflowExecution(cctx, &workflowservice.SignalWorkflowExecutionRequest{
						Namespace:         *ns,
						WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: scaleID(*prefix, n)},
						SignalName:        "probe", Input: jsonPayloads("sig"), Identity: id,
						RequestId: randTag() + randTag(),
					})
					cc()
					if err != nil {
						errs.add("SignalWorkflowExecution", err)
						continue
					}
					sigL.add(time.Since(b))
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		r.Signal.Sent, r.Signal.OK, r.Signal.Concurrency = *nSig, int(ok.Load()), *sigConc
		r.Signal.Latency = sigL.stats()
		r.Signal.RatePerS = float64(ok.Load()) / el.Seconds()
		// Let the tasks the signals caused be answered (quiet for 2 s, at most 60 s).
		for deadline := time.Now().Add(60 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); {
			last := time.Unix(0, parkW.lastTask.Load())
			if time.Since(last) > 2*time.Second {
				break
			}
			sleepCtx(ctx, 200*time.Millisecond)
		}
		r.Signal.TasksDone = parkW.handled.Load()
		fmt.Fprintf(os.Stderr, "probe: %d signals at c%d, %.0f/s, p50=%.2fms p99=%.2fms max=%.1fms; %d tasks answered\n",
			r.Signal.OK, *sigConc, r.Signal.RatePerS, r.Signal.Latency.P50Ms, r.Signal.Latency.P99Ms, r.Signal.Latency.MaxMs, r.Signal.TasksDone)
	}

	// (b) timer lateness and start latency at a steady start rate.
	if *tdur > 0 {
		ttq := "scale-probe-" + randTag()
		var (
			lateH, lateD, startL latRec
			completed            atomic.Int64
			sentMu               sync.Mutex
			timerSent            = map[string]time.Time{}
		)
		tw := &scaleWorker{p: p, ns: *ns, tq: ttq, identity: id, errs: errs}
		tw.decide = func(resp *workflowservice.PollWorkflowTaskQueueResponse) []*commandpb.Command {
			var startedAt, firedAt time.Time
			for _, e := range resp.GetHistory().GetEvents() {
				switch e.GetEventType() {
				case enumspb.EVENT_TYPE_TIMER_STARTED:
					startedAt = e.GetEventTime().AsTime()
				case enumspb.EVENT_TYPE_TIMER_FIRED:
					firedAt = e.GetEventTime().AsTime()
				}
			}
			wid := resp.GetWorkflowExecution().GetWorkflowId()
			switch {
			case startedAt.IsZero():
				return []*commandpb.Command{timerCmd("t", *delay)}
			case !firedAt.IsZero():
				lateH.add(firedAt.Sub(startedAt) - *delay)
				sentMu.Lock()
				s, found := timerSent[wid]
				sentMu.Unlock()
				if found {
					lateD.add(time.Since(s) - *delay)
				}
				return []*commandpb.Command{completeCmd()}
			default:
				errs.addf("UnexpectedTask", "%s: task before its timer fired", wid)
				return nil
			}
		}
		tw.after = func(resp *workflowservice.PollWorkflowTaskQueueResponse, ok bool) {
			if !ok {
				return
			}
			wid := resp.GetWorkflowExecution().GetWorkflowId()
			if hasEvent(resp, enumspb.EVENT_TYPE_TIMER_FIRED) {
				completed.Add(1)
			} else if !hasEvent(resp, enumspb.EVENT_TYPE_TIMER_STARTED) {
				sentMu.Lock()
				timerSent[wid] = time.Now() // the StartTimer completion returned OK
				sentMu.Unlock()
			}
		}
		for i := 0; i < *pollers; i++ {
			workers.Add(1)
			go func() { defer workers.Done(); tw.run(wctx) }()
		}
		sleepCtx(ctx, time.Second) // pollers up before the first start
		planned := int(*rate * tdur.Seconds())
		interval := time.Duration(float64(time.Second) / *rate)
		jobs := make(chan int, planned)
		var startedN atomic.Int64
		var behind atomic.Int64
		tag := randTag()
		t0 := time.Now()
		var sw sync.WaitGroup
		for i := 0; i < *startWorkers; i++ {
			sw.Add(1)
			go func() {
				defer sw.Done()
				for k := range jobs {
					due := t0.Add(time.Duration(k) * interval)
					if late := time.Since(due); late > 50*time.Millisecond {
						behind.Add(1)
					}
					wid := fmt.Sprintf("scale-probe-%s-%d", tag, k)
					b := time.Now()
					cctx, cc := unaryCtx(ctx)
					_, err := p.get().StartWorkflowExecution(cctx, &workflowservice.StartWorkflowExecutionRequest{
						Namespace: *ns, WorkflowId: wid, RequestId: wid,
						WorkflowType:        &commonpb.WorkflowType{Name: probeTimerType},
						TaskQueue:           normalQueue(ttq),
						Input:               jsonPayloads("probe"),
						WorkflowTaskTimeout: dur(10 * time.Second),
						Identity:            id,
					})
					cc()
					if err != nil {
						errs.add("StartWorkflowExecution", err)
						continue
					}
					startL.add(time.Since(b))
					startedN.Add(1)
				}
			}()
		}
		// Open loop: job k is released at t0 + k*interval, whether or not earlier starts returned.
		for k := 0; k < planned && ctx.Err() == nil; k++ {
			if d := time.Until(t0.Add(time.Duration(k) * interval)); d > 0 {
				time.Sleep(d)
			}
			jobs <- k
		}
		close(jobs)
		sw.Wait()
		startEl := time.Since(t0)
		// Wait for the timers to fire and the runs to complete.
		for deadline := time.Now().Add(*delay + 60*time.Second); ctx.Err() == nil && time.Now().Before(deadline) && completed.Load() < startedN.Load(); {
			sleepCtx(ctx, 100*time.Millisecond)
		}
		r.Timer.Planned, r.Timer.Started, r.Timer.Completed = planned, int(startedN.Load()), completed.Load()
		r.Timer.TargetRate, r.Timer.StartRate, r.Timer.DelayS = *rate, float64(startedN.Load())/startEl.Seconds(), delay.Seconds()
		r.Timer.LatenessHist, r.Timer.LatenessDriver, r.Timer.StartLatency = lateH.stats(), lateD.stats(), startL.stats()
		r.Timer.StartsBehind = int(behind.Load())
		r.Timer.NotCompleted = startedN.Load() - completed.Load()
		fmt.Fprintf(os.Stderr, "probe: %d timer runs at %.0f/s (target %.0f), lateness p50=%.1fms p99=%.1fms max=%.1fms, start p50=%.2fms p99=%.2fms, %d not completed\n",
			r.Timer.Started, r.Timer.StartRate, *rate, r.Timer.LatenessHist.P50Ms, r.Timer.LatenessHist.P99Ms, r.Timer.LatenessHist.MaxMs,
			r.Timer.StartLatency.P50Ms, r.Timer.StartLatency.P99Ms, r.Timer.NotCompleted)
		r.TaskRetries += tw.retries.Load()
	}
	stopWorkers()
	workers.Wait()
	r.TaskRetries += parkW.retries.Load()
	r.Errors, r.ErrorSamples = errs.snapshot()
	r.ErrorCount = errs.total()
	r.DriverCPUS = selfCPU() - cpu0
	writeJSON(r, *out)
	for _, s := range r.ErrorSamples {
		fmt.Fprintln(os.Stderr, "  error:", s)
	}
	return 0
}

// cmdNamespace registers a namespace (retention 1 day, as start-dev's), for servers started
// with `sundial server start`, which creates none. An existing namespace is fine.
func cmdNamespace(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("namespace", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7233", "server gRPC address")
	name := fs.String("name", "default", "namespace to register")
	_ = fs.Parse(args)
	p, err := dialPool(*addr, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.close()
	cctx, cc := unaryCtx(ctx)
	defer cc()
	_, err = p.get().RegisterNamespace(cctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: *name, WorkflowExecutionRetentionPeriod: dur(24 * time.Hour),
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		fmt.Fprintln(os.Stderr, "RegisterNamespace:", err)
		return 1
	}
	fmt.Printf("{\"namespace\":%q,\"existed\":%v}\n", *name, err != nil)
	return 0
}
