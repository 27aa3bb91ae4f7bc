package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// Expected histories, as event-type numbers (temporal.api.enums.v1.EventType).
//
//	1 WorkflowExecutionStarted   5 WorkflowTaskScheduled   6 WorkflowTaskStarted
//	7 WorkflowTaskCompleted     10 ActivityTaskScheduled  11 ActivityTaskStarted
//	12 ActivityTaskCompleted    17 TimerStarted           18 TimerFired
//	26 WorkflowExecutionSignaled 2 WorkflowExecutionCompleted
var (
	expectStart    = []int32{1, 5}
	expectActivity = []int32{1, 5, 6, 7, 10, 11, 12, 5, 6, 7, 2}
	expectTimer    = []int32{1, 5, 6, 7, 17, 18, 5, 6, 7, 2}
	// Signals that arrive while no workflow task is in flight are written at once; those that
	// arrive while one is started are buffered until it completes, then a new task is
	// scheduled. The worker completes the workflow on the task that sees the "done" signal.
	signalGrammar = regexp.MustCompile(`^1 5 (26 )*6 7 ((26 )+5 (26 )*6 7 )*2 $`)
)

func typeSeq(events []*historypb.HistoryEvent) []int32 {
	s := make([]int32, len(events))
	for i, e := range events {
		s[i] = int32(e.GetEventType())
	}
	return s
}

func seqString(s []int32) string {
	var b strings.Builder
	for _, t := range s {
		b.WriteString(strconv.Itoa(int(t)))
		b.WriteByte(' ')
	}
	return b.String()
}

func names(s []int32) string {
	parts := make([]string, len(s))
	for i, t := range s {
		parts[i] = strings.TrimPrefix(enumspb.EventType(t).String(), "EVENT_TYPE_")
	}
	return strings.Join(parts, ",")
}

// checkStructure checks what must hold for any history: event ids 1..n in order, no
// workflow-task or activity timeouts or failures, and that every reference to an earlier
// event (scheduled/started ids) points at an event of the right type.
func checkStructure(events []*historypb.HistoryEvent) error {
	byID := map[int64]enumspb.EventType{}
	ref := func(e *historypb.HistoryEvent, what string, id int64, want enumspb.EventType) error {
		if got, ok := byID[id]; !ok || got != want {
			return fmt.Errorf("event %d (%s): %s=%d is %v, want %v", e.GetEventId(), e.GetEventType(), what, id, got, want)
		}
		return nil
	}
	for i, e := range events {
		if e.GetEventId() != int64(i+1) {
			return fmt.Errorf("event #%d has id %d", i+1, e.GetEventId())
		}
		var err error
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED,
			enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			err = fmt.Errorf("event %d is %s", e.GetEventId(), e.GetEventType())
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			err = ref(e, "scheduled_event_id", e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId(), enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			a := e.GetWorkflowTaskCompletedEventAttributes()
			if err = ref(e, "scheduled_event_id", a.GetScheduledEventId(), enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED); err == nil {
				err = ref(e, "started_event_id", a.GetStartedEventId(), enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			err = ref(e, "scheduled_event_id", a.GetScheduledEventId(), enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
			if err == nil && a.GetAttempt() != 1 {
				err = fmt.Errorf("event %d: activity attempt %d", e.GetEventId(), a.GetAttempt())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := e.GetActivityTaskCompletedEventAttributes()
			if err = ref(e, "scheduled_event_id", a.GetScheduledEventId(), enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED); err == nil {
				err = ref(e, "started_event_id", a.GetStartedEventId(), enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED)
			}
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			err = ref(e, "started_event_id", e.GetTimerFiredEventAttributes().GetStartedEventId(), enumspb.EVENT_TYPE_TIMER_STARTED)
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			err = ref(e, "workflow_task_completed_event_id", e.GetWorkflowExecutionCompletedEventAttributes().GetWorkflowTaskCompletedEventId(), enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
		}
		if err != nil {
			return err
		}
		byID[e.GetEventId()] = e.GetEventType()
	}
	return nil
}

// checkExact compares a history with an exact expected sequence of event types.
func checkExact(events []*historypb.HistoryEvent, want []int32) error {
	got := typeSeq(events)
	if err := checkStructure(events); err != nil {
		return fmt.Errorf("%v in [%s]", err, names(got))
	}
	if seqString(got) != seqString(want) {
		return fmt.Errorf("events [%s], want [%s]", names(got), names(want))
	}
	return checkStructure(events)
}

// checkSignal checks a signal workflow's history: the grammar above, and exactly `signals`
// "s" signals plus one "done".
func checkSignal(events []*historypb.HistoryEvent, signals int64) error {
	got := typeSeq(events)
	if err := checkStructure(events); err != nil {
		return fmt.Errorf("%v in [%s]", err, names(got))
	}
	if !signalGrammar.MatchString(seqString(got)) {
		return fmt.Errorf("events [%s] do not match the signal grammar %s", names(got), signalGrammar)
	}
	var s, done int64
	for _, e := range events {
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
			switch e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() {
			case "s":
				s++
			case "done":
				done++
			}
		}
	}
	if s != signals || done != 1 {
		return fmt.Errorf("history has %d signals and %d done, driver got OK for %d and 1", s, done, signals)
	}
	return checkStructure(events)
}
