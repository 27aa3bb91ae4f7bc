package main

// A minimal in-memory WorkflowService, just enough for the driver's workloads. It is
// not a server to compare with: it exists to measure the driver's own ceiling on this
// machine (how many workflows per second the driver can push when the server costs
// almost nothing) and to smoke-test the driver without any real server.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type mockWF struct {
	id, runID   string
	wfType      string
	tq          string
	events      []*historypb.HistoryEvent
	wftPending  bool // a workflow task is scheduled or started
	wftStarted  bool
	buffered    []*historypb.HistoryEvent // signals that arrived while a task was started
	closed      bool
	lastSched   int64
	lastStarted int64
}

type mockServer struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu     sync.Mutex
	wfs    map[string]*mockWF
	wftQ   map[string]chan string
	actQ   map[string]chan string
	runSeq int64
}

func newMock() *mockServer {
	return &mockServer{wfs: map[string]*mockWF{}, wftQ: map[string]chan string{}, actQ: map[string]chan string{}}
}

const mockQueueCap = 1 << 16

func (m *mockServer) queue(qs map[string]chan string, tq string) chan string {
	q, ok := qs[tq]
	if !ok {
		q = make(chan string, mockQueueCap)
		qs[tq] = q
	}
	return q
}

func (w *mockWF) add(t enumspb.EventType, set func(e *historypb.HistoryEvent)) *historypb.HistoryEvent {
	e := &historypb.HistoryEvent{EventId: int64(len(w.events) + 1), EventType: t, EventTime: timestamppb.Now()}
	if set != nil {
		set(e)
	}
	w.events = append(w.events, e)
	return e
}

// scheduleWFT must be called with m.mu held.
func (m *mockServer) scheduleWFT(w *mockWF) {
	e := w.add(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, nil)
	w.lastSched = e.EventId
	w.wftPending = true
	select {
	case m.queue(m.wftQ, w.tq) <- w.id:
	default: // queue full: the task is dropped; the driver will report the workflow
	}
}

func (m *mockServer) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{ServerVersion: "bench-mock"}, nil
}

func (m *mockServer) DescribeNamespace(context.Context, *workflowservice.DescribeNamespaceRequest) (*workflowservice.DescribeNamespaceResponse, error) {
	return &workflowservice.DescribeNamespaceResponse{}, nil
}

func (m *mockServer) StartWorkflowExecution(_ context.Context, r *workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.wfs[r.GetWorkflowId()]; ok {
		if !w.closed {
			return &workflowservice.StartWorkflowExecutionResponse{RunId: w.runID}, nil
		}
	}
	m.runSeq++
	w := &mockWF{id: r.GetWorkflowId(), runID: fmt.Sprintf("run-%d", m.runSeq), wfType: r.GetWorkflowType().GetName(), tq: r.GetTaskQueue().GetName()}
	w.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType: r.GetWorkflowType(), TaskQueue: r.GetTaskQueue(), Input: r.GetInput()}}
	})
	m.wfs[w.id] = w
	m.scheduleWFT(w)
	return &workflowservice.StartWorkflowExecutionResponse{RunId: w.runID, Started: true}, nil
}

func (m *mockServer) PollWorkflowTaskQueue(ctx context.Context, r *workflowservice.PollWorkflowTaskQueueRequest) (*workflowservice.PollWorkflowTaskQueueResponse, error) {
	m.mu.Lock()
	q := m.queue(m.wftQ, r.GetTaskQueue().GetName())
	m.mu.Unlock()
	t := time.NewTimer(55 * time.Second)
	defer t.Stop()
	select {
	case id := <-q:
		m.mu.Lock()
		defer m.mu.Unlock()
		w := m.wfs[id]
		e := w.add(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{
				ScheduledEventId: w.lastSched, Identity: r.GetIdentity()}}
		})
		w.lastStarted = e.EventId
		w.wftStarted = true
		return &workflowservice.PollWorkflowTaskQueueResponse{
			TaskToken:         []byte(fmt.Sprintf("wft|%s|%d", w.id, e.EventId)),
			WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: w.id, RunId: w.runID},
			WorkflowType:      &commonpb.WorkflowType{Name: w.wfType},
			StartedEventId:    e.EventId,
			Attempt:           1,
			History:           &historypb.History{Events: append([]*historypb.HistoryEvent(nil), w.events...)},
		}, nil
	case <-t.C:
		return &workflowservice.PollWorkflowTaskQueueResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func parseToken(tok []byte) (kind, id string, n int64, err error) {
	p := strings.Split(string(tok), "|")
	if len(p) != 3 {
		return "", "", 0, serviceerror.NewInvalidArgument("bad task token")
	}
	n, err = strconv.ParseInt(p[2], 10, 64)
	return p[0], p[1], n, err
}

func (m *mockServer) RespondWorkflowTaskCompleted(_ context.Context, r *workflowservice.RespondWorkflowTaskCompletedRequest) (*workflowservice.RespondWorkflowTaskCompletedResponse, error) {
	_, id, started, err := parseToken(r.GetTaskToken())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.wfs[id]
	if !ok || !w.wftStarted || w.lastStarted != started {
		return nil, serviceerror.NewNotFound("workflow task not found")
	}
	done := w.add(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{
			ScheduledEventId: w.lastSched, StartedEventId: started}}
	})
	w.wftPending, w.wftStarted = false, false
	resp := &workflowservice.RespondWorkflowTaskCompletedResponse{}
	for _, c := range r.GetCommands() {
		switch c.GetCommandType() {
		case enumspb.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK:
			a := c.GetScheduleActivityTaskCommandAttributes()
			e := w.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, func(e *historypb.HistoryEvent) {
				e.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
					ActivityId: a.GetActivityId(), ActivityType: a.GetActivityType(), TaskQueue: a.GetTaskQueue()}}
			})
			tok := fmt.Sprintf("act|%s|%d", w.id, e.EventId)
			if a.GetRequestEagerExecution() {
				resp.ActivityTasks = append(resp.ActivityTasks, &workflowservice.PollActivityTaskQueueResponse{TaskToken: []byte(tok)})
			} else {
				select {
				case m.queue(m.actQ, a.GetTaskQueue().GetName()) <- tok:
				default:
				}
			}
		case enumspb.COMMAND_TYPE_START_TIMER:
			a := c.GetStartTimerCommandAttributes()
			e := w.add(enumspb.EVENT_TYPE_TIMER_STARTED, nil)
			time.AfterFunc(a.GetStartToFireTimeout().AsDuration(), func() {
				m.mu.Lock()
				defer m.mu.Unlock()
				w.add(enumspb.EVENT_TYPE_TIMER_FIRED, func(f *historypb.HistoryEvent) {
					f.Attributes = &historypb.HistoryEvent_TimerFiredEventAttributes{TimerFiredEventAttributes: &historypb.TimerFiredEventAttributes{StartedEventId: e.EventId}}
				})
				m.scheduleWFT(w)
			})
		case enumspb.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
			w.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, func(e *historypb.HistoryEvent) {
				e.Attributes = &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{
					WorkflowTaskCompletedEventId: done.EventId}}
			})
			w.closed = true
		}
	}
	if len(w.buffered) > 0 && !w.closed {
		for _, e := range w.buffered {
			e.EventId = int64(len(w.events) + 1)
			w.events = append(w.events, e)
		}
		w.buffered = nil
		m.scheduleWFT(w)
	}
	return resp, nil
}

func (m *mockServer) PollActivityTaskQueue(ctx context.Context, r *workflowservice.PollActivityTaskQueueRequest) (*workflowservice.PollActivityTaskQueueResponse, error) {
	m.mu.Lock()
	q := m.queue(m.actQ, r.GetTaskQueue().GetName())
	m.mu.Unlock()
	t := time.NewTimer(55 * time.Second)
	defer t.Stop()
	select {
	case tok := <-q:
		return &workflowservice.PollActivityTaskQueueResponse{TaskToken: []byte(tok)}, nil
	case <-t.C:
		return &workflowservice.PollActivityTaskQueueResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *mockServer) RespondActivityTaskCompleted(_ context.Context, r *workflowservice.RespondActivityTaskCompletedRequest) (*workflowservice.RespondActivityTaskCompletedResponse, error) {
	_, id, sched, err := parseToken(r.GetTaskToken())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.wfs[id]
	if !ok || w.closed {
		return nil, serviceerror.NewNotFound("workflow execution already completed")
	}
	st := w.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{ScheduledEventId: sched, Attempt: 1}}
	})
	w.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{
			ScheduledEventId: sched, StartedEventId: st.EventId, Result: r.GetResult()}}
	})
	if !w.wftPending {
		m.scheduleWFT(w)
	}
	return &workflowservice.RespondActivityTaskCompletedResponse{}, nil
}

func (m *mockServer) SignalWorkflowExecution(_ context.Context, r *workflowservice.SignalWorkflowExecutionRequest) (*workflowservice.SignalWorkflowExecutionResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.wfs[r.GetWorkflowExecution().GetWorkflowId()]
	if !ok || w.closed {
		return nil, serviceerror.NewNotFound("workflow not found or closed")
	}
	ev := &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, EventTime: timestamppb.Now(),
		Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{
			SignalName: r.GetSignalName(), Input: r.GetInput()}}}
	switch {
	case w.wftStarted:
		w.buffered = append(w.buffered, ev)
	default:
		ev.EventId = int64(len(w.events) + 1)
		w.events = append(w.events, ev)
		if !w.wftPending {
			m.scheduleWFT(w)
		}
	}
	return &workflowservice.SignalWorkflowExecutionResponse{}, nil
}

func (m *mockServer) GetWorkflowExecutionHistory(_ context.Context, r *workflowservice.GetWorkflowExecutionHistoryRequest) (*workflowservice.GetWorkflowExecutionHistoryResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.wfs[r.GetExecution().GetWorkflowId()]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	return &workflowservice.GetWorkflowExecutionHistoryResponse{History: &historypb.History{Events: append([]*historypb.HistoryEvent(nil), w.events...)}}, nil
}

func (m *mockServer) TerminateWorkflowExecution(context.Context, *workflowservice.TerminateWorkflowExecutionRequest) (*workflowservice.TerminateWorkflowExecutionResponse, error) {
	return &workflowservice.TerminateWorkflowExecutionResponse{}, nil
}

// cmdMock serves the mock on a loopback address until -for elapses (bounded) or it is
// signalled.
func cmdMock(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("mock", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	lifetime := fs.Duration("for", 10*time.Minute, "exit after this long")
	_ = fs.Parse(args)
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "mock listens on loopback only")
		return 2
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(lis.Addr().String())
	s := grpc.NewServer()
	workflowservice.RegisterWorkflowServiceServer(s, newMock())
	ctx, cancel := context.WithTimeout(ctx, *lifetime)
	defer cancel()
	go func() { <-ctx.Done(); s.Stop() }()
	_ = s.Serve(lis)
	return 0
}
