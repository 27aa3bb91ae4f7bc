package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	unaryTimeout    = 30 * time.Second // what the SDKs use for unary calls
	longPollTimeout = 70 * time.Second // the SDKs' long-poll deadline; servers answer empty before it
	maxErrorSamples = 20
)

// pool is a small set of gRPC connections. HTTP/2 servers cap concurrent streams per
// connection (hyper's default is 200), and a benchmark with 128 workflows in flight keeps
// 256 long polls open, so streams are spread over several connections.
type pool struct {
	conns []*grpc.ClientConn
	svcs  []workflowservice.WorkflowServiceClient
	next  atomic.Uint64
}

func dialPool(addr string, n int) (*pool, error) {
	if n < 1 {
		n = 1
	}
	p := &pool{}
	for i := 0; i < n; i++ {
		c, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			return nil, err
		}
		p.conns = append(p.conns, c)
		p.svcs = append(p.svcs, workflowservice.NewWorkflowServiceClient(c))
	}
	return p, nil
}

func (p *pool) get() workflowservice.WorkflowServiceClient {
	return p.svcs[int(p.next.Add(1))%len(p.svcs)]
}

func (p *pool) close() {
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// errCounter counts failed RPCs by "Method/Code" and keeps the first few messages verbatim,
// because for a server under development the exact status and message is the useful part.
type errCounter struct {
	mu      sync.Mutex
	counts  map[string]int
	samples []string
}

func newErrCounter() *errCounter { return &errCounter{counts: map[string]int{}} }

func (e *errCounter) add(method string, err error) {
	st, _ := status.FromError(err)
	key := method + "/" + st.Code().String()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[key]++
	if len(e.samples) < maxErrorSamples {
		e.samples = append(e.samples, fmt.Sprintf("%s: %s: %s", method, st.Code(), st.Message()))
	}
}

// addf records a non-RPC failure (e.g. a workflow that did not complete in time).
func (e *errCounter) addf(key, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[key]++
	if len(e.samples) < maxErrorSamples {
		e.samples = append(e.samples, key+": "+fmt.Sprintf(format, args...))
	}
}

func (e *errCounter) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, v := range e.counts {
		n += v
	}
	return n
}

func (e *errCounter) snapshot() (map[string]int, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]int, len(e.counts))
	for k, v := range e.counts {
		m[k] = v
	}
	return m, append([]string(nil), e.samples...)
}

func unaryCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, unaryTimeout)
}

func jsonPayloads(s string) *commonpb.Payloads {
	return &commonpb.Payloads{Payloads: []*commonpb.Payload{{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(`"` + s + `"`),
	}}}
}

func normalQueue(name string) *taskqueuepb.TaskQueue {
	return &taskqueuepb.TaskQueue{Name: name, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// fetchHistory reads the full history of one run, following next_page_token.
func fetchHistory(ctx context.Context, p *pool, ns string, ex *commonpb.WorkflowExecution, first []*historypb.HistoryEvent, token []byte) ([]*historypb.HistoryEvent, error) {
	events := append([]*historypb.HistoryEvent(nil), first...)
	for pages := 0; (pages == 0 && first == nil) || len(token) > 0; pages++ {
		if pages > 10000 {
			return nil, fmt.Errorf("history paging did not end")
		}
		cctx, cancel := unaryCtx(ctx)
		resp, err := p.get().GetWorkflowExecutionHistory(cctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
			Namespace:     ns,
			Execution:     ex,
			NextPageToken: token,
		})
		cancel()
		if err != nil {
			return nil, err
		}
		events = append(events, resp.GetHistory().GetEvents()...)
		token = resp.GetNextPageToken()
	}
	return events, nil
}

type latencyStats struct {
	N      int     `json:"n"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func summarize(ds []time.Duration) latencyStats {
	if len(ds) == 0 {
		return latencyStats{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(p float64) float64 {
		// nearest-rank percentile
		idx := int(p*float64(len(s))+0.999999) - 1
		if idx < 0 {
			idx = 0
		}
		if idx >= len(s) {
			idx = len(s) - 1
		}
		return ms(s[idx])
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return latencyStats{
		N:      len(s),
		MeanMs: ms(sum / time.Duration(len(s))),
		P50Ms:  pct(0.50),
		P95Ms:  pct(0.95),
		P99Ms:  pct(0.99),
		MaxMs:  ms(s[len(s)-1]),
	}
}
