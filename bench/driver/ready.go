package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
)

type readyResult struct {
	SystemInfoS float64 `json:"system_info_s"` // first successful GetSystemInfo
	NamespaceS  float64 `json:"namespace_s"`   // first successful DescribeNamespace
	FirstStartS float64 `json:"first_start_s"` // first successful StartWorkflowExecution
	Attempts    int     `json:"system_info_attempts"`
	LastError   string  `json:"last_error,omitempty"`
}

// cmdReady polls a freshly spawned server: GetSystemInfo every 5 ms until it answers OK,
// then DescribeNamespace, then one StartWorkflowExecution (a probe workflow on a queue
// nobody polls, terminated right after). Times are measured from -since (the spawn time
// taken by the caller), so they include process start.
func cmdReady(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("ready", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7233", "server gRPC address")
	ns := fs.String("namespace", "default", "namespace")
	since := fs.Int64("since", 0, "unix nanoseconds of the server spawn (default: now)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this")
	_ = fs.Parse(args)
	t0 := time.Now()
	if *since > 0 {
		t0 = time.Unix(0, *since)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p, err := dialPool(*addr, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.close()
	var r readyResult
	try := func(f func(context.Context) error) (float64, bool) {
		for {
			cctx, c := context.WithTimeout(ctx, time.Second)
			err := f(cctx)
			c()
			if err == nil {
				return time.Since(t0).Seconds(), true
			}
			r.LastError = err.Error()
			if ctx.Err() != nil {
				return 0, false
			}
			sleepCtx(ctx, 5*time.Millisecond)
		}
	}
	ok := true
	svc := p.get()
	// A fresh connection per attempt: a gRPC channel whose connect failed waits out a
	// reconnect backoff (1 s at first), which would quantize the measurement.
	r.SystemInfoS, ok = try(func(c context.Context) error {
		r.Attempts++
		fresh, err := dialPool(*addr, 1)
		if err != nil {
			return err
		}
		defer fresh.close()
		_, err = fresh.get().GetSystemInfo(c, &workflowservice.GetSystemInfoRequest{})
		return err
	})
	if ok {
		r.NamespaceS, ok = try(func(c context.Context) error {
			_, err := svc.DescribeNamespace(c, &workflowservice.DescribeNamespaceRequest{Namespace: *ns})
			return err
		})
	}
	if ok {
		id := "ready-probe-" + randTag()
		r.FirstStartS, ok = try(func(c context.Context) error {
			_, err := svc.StartWorkflowExecution(c, &workflowservice.StartWorkflowExecutionRequest{
				Namespace: *ns, WorkflowId: id, RequestId: id,
				WorkflowType: &commonpb.WorkflowType{Name: "ready-probe"},
				TaskQueue:    normalQueue("ready-probe"),
			})
			return err
		})
		if ok {
			c, cc := unaryCtx(context.Background())
			_, _ = svc.TerminateWorkflowExecution(c, &workflowservice.TerminateWorkflowExecutionRequest{
				Namespace: *ns, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id}, Reason: "ready probe",
			})
			cc()
		}
	}
	if ok {
		r.LastError = ""
	}
	js, _ := json.Marshal(r)
	fmt.Println(string(js))
	if !ok {
		return 1
	}
	return 0
}
