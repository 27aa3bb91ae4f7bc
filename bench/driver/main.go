// Command bench-driver is Sundial's load driver. It speaks Temporal's WorkflowService
// worker protocol directly over gRPC (no SDK), so the driver stays cheap next to the server
// it measures, and it reports its own CPU so that can be checked.
//
//	bench-driver run   -addr 127.0.0.1:7233 -workload activity -concurrency 32 -duration 10s
//	bench-driver ready -addr 127.0.0.1:7233 -since <unix-nanos of the server spawn>
//	bench-driver mock  -addr 127.0.0.1:7299   (in-memory stand-in server: driver ceiling, smoke tests)
//
// Both print one JSON object on stdout and a short summary on stderr.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: bench-driver run|ready|mock [flags]  (bench-driver run -h for flags)\n")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "run":
		os.Exit(cmdRun(ctx, os.Args[2:]))
	case "ready":
		os.Exit(cmdReady(ctx, os.Args[2:]))
	case "mock":
		os.Exit(cmdMock(ctx, os.Args[2:]))
	case "park":
		os.Exit(cmdPark(ctx, os.Args[2:]))
	case "probe":
		os.Exit(cmdProbe(ctx, os.Args[2:]))
	case "namespace":
		os.Exit(cmdNamespace(ctx, os.Args[2:]))
	default:
		usage()
	}
}

func cmdRun(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var cfg config
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7233", "server gRPC address (loopback only)")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "namespace")
	fs.StringVar(&cfg.Workload, "workload", "activity", "start | activity | signal | timer | sysinfo (GetSystemInfo loop: RPC floor)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 8, "workflows (or RPC loops) in flight")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement window after warm-up")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up excluded from throughput and latency")
	fs.IntVar(&cfg.MaxUnits, "max", 200000, "upper bound on units (workflows, starts or signals) per run")
	fs.BoolVar(&cfg.Eager, "eager", true, "set request_eager_execution on ScheduleActivityTask (as the SDKs do)")
	fs.IntVar(&cfg.VerifySample, "verify", 20, "histories to fetch and check after the run")
	fs.DurationVar(&cfg.WfTimeout, "wf-timeout", 30*time.Second, "give up waiting for one workflow after this")
	fs.IntVar(&cfg.Conns, "conns", 0, "gRPC connections (0: one per 64 concurrent streams)")
	fs.IntVar(&cfg.Pollers, "pollers", 0, "workflow (and activity) pollers (0: = concurrency)")
	fs.DurationVar(&cfg.TimerDelay, "timer", time.Second, "timer workload: timer duration")
	fs.DurationVar(&cfg.HeadStart, "poller-head-start", time.Second, "start pollers this long before the first workflow")
	out := fs.String("out", "", "also write the JSON result to this file")
	tracePath := fs.String("trace", "", "debug: log every workflow task received and answered to this file")
	cpuprof := fs.String("cpuprofile", "", "write a Go CPU profile of the driver to this file")
	_ = fs.Parse(args)
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if cfg.Concurrency < 1 || cfg.Duration <= 0 || cfg.Duration > time.Hour || cfg.MaxUnits < 0 {
		fmt.Fprintln(os.Stderr, "bad -concurrency/-duration/-max")
		return 2
	}
	if *tracePath != "" {
		f, err := os.Create(*tracePath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		cfg.Trace = f
	}
	b, err := newBench(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.p.close()
	// Hard bound on the whole run: window + warm-up + drain + verification.
	rctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+cfg.WfTimeout+2*time.Minute)
	defer cancel()
	r, err := b.run(rctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	js, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(js))
	if *out != "" {
		_ = os.WriteFile(*out, append(js, '\n'), 0o644)
	}
	fmt.Fprintf(os.Stderr, "%s c=%d: %.1f/s (%d in %.1fs window, %d total) p50=%.1fms p95=%.1fms p99=%.1fms errors=%d inline=%d/%d verify=%d/%d failed driver_cpu=%.2fs eager=%d polled=%d\n",
		r.Workload, r.Concurrency, r.Throughput, r.UnitsWindow, r.WindowS, r.UnitsTotal,
		r.Latency.P50Ms, r.Latency.P95Ms, r.Latency.P99Ms, r.ErrorCount,
		r.InlineFailed, r.InlineChecked, r.VerifyFailed, r.VerifySampled, r.DriverCPUS,
		r.EagerActTasks, r.PolledActTasks)
	for _, s := range r.ErrorSamples {
		fmt.Fprintln(os.Stderr, "  error:", s)
	}
	for _, s := range append(r.InlineSamples, r.VerifySamples...) {
		fmt.Fprintln(os.Stderr, "  check:", s)
	}
	return 0
}
