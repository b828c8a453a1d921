package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/workflows"
)

// searchAttributes are registered at the dev server's start, as scripts/dev-stack
// and internal/testenv do: workflows' one table of them.
var searchAttributes = workflows.SearchAttributeFlags()

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func quietLogger() tlog.Logger { return tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

// ---------------------------------------------------------------- Temporal

type temporalServer struct {
	addr string
	proc *proc
}

// startTemporal runs bin/temporal server start-dev on loopback with a fresh
// SQLite file in WAL mode (the arguments internal/testenv uses), headless.
func startTemporal(ctx context.Context, root, dir string) (*temporalServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--http-port", strconv.Itoa(httpPort), "--metrics-port", strconv.Itoa(metricsPort), "--headless",
		"--db-filename", filepath.Join(dir, "temporal.db"),
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
		"--log-level", "error"}
	for _, sa := range searchAttributes {
		args = append(args, "--search-attribute", sa)
	}
	p, err := startProc("temporal", filepath.Join(dir, "temporal.log"), nil, filepath.Join(root, "bin", "temporal"), args...)
	if err != nil {
		return nil, err
	}
	t := &temporalServer{addr: fmt.Sprintf("127.0.0.1:%d", port), proc: p}
	atExit(func() { p.stop(syscall.SIGINT, 15*time.Second) })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := t.check(ctx)
		if err == nil {
			return t, nil
		}
		if !p.alive() {
			return nil, fmt.Errorf("temporal dev server exited during start-up: %s", p.tail(2000))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("temporal dev server not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (t *temporalServer) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: t.addr, Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"}); err != nil {
		return err
	}
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		return err
	}
	for _, sa := range searchAttributes {
		name, typ, _ := strings.Cut(sa, "=")
		want, _ := enumspb.IndexedValueTypeFromString(typ)
		if got, ok := resp.GetCustomAttributes()[name]; !ok || got != want {
			return fmt.Errorf("search attribute %s not registered yet", name)
		}
	}
	return nil
}

// ---------------------------------------------------------------- local-kms and its counting proxy

const (
	kmsKeyUUID = "0b3c5d1e-7f4a-4c2b-9e8d-6a5f4e3d2c1b"
	kmsAccount = "111122223333"
	kmsRegion  = "eu-west-2"
	kmsAlias   = "alias/dpp-bench"
)

// kmsServer is local-kms with a fixed data directory and port, so it can be
// killed and started again with its keys intact.
type kmsServer struct {
	root, dir string
	port      int
	mu        sync.Mutex
	proc      *proc
	starts    int
}

func newKMS(root, dir string) (*kmsServer, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	seed := "Keys:\n  Symmetric:\n    Aes:\n      - Metadata:\n          KeyId: " + kmsKeyUUID +
		"\n          Description: dpp bench key\n        BackingKeys:\n          - " + randHex(32) +
		"\nAliases:\n  - AliasName: " + kmsAlias + "\n    TargetKeyId: " + kmsKeyUUID + "\n"
	if err := os.WriteFile(filepath.Join(dir, "seed.yaml"), []byte(seed), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	k := &kmsServer{root: root, dir: dir, port: port}
	atExit(k.stop)
	return k, nil
}

func (k *kmsServer) endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", k.port) }

func (k *kmsServer) start(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.starts++
	env := append(os.Environ(), "PORT="+strconv.Itoa(k.port), "KMS_DATA_PATH="+filepath.Join(k.dir, "data"),
		"KMS_SEED_PATH="+filepath.Join(k.dir, "seed.yaml"), "KMS_REGION="+kmsRegion, "KMS_ACCOUNT_ID="+kmsAccount)
	p, err := startProc("local-kms", filepath.Join(k.dir, "local-kms.log"), env, filepath.Join(k.root, "bin", "local-kms"))
	if err != nil {
		return err
	}
	k.proc = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := kmsReady(ctx, k.endpoint()); err == nil {
			return nil
		} else if !p.alive() {
			return fmt.Errorf("local-kms exited during start-up: %s", p.tail(2000))
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("local-kms not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *kmsServer) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc != nil {
		k.proc.stop(syscall.SIGTERM, 5*time.Second)
	}
}

func (k *kmsServer) pid() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil || !k.proc.alive() {
		return 0
	}
	return k.proc.pid()
}

// kmsReady makes a real KMS call: the seeded key answers under its alias.
func kmsReady(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(`{"KeyId":"`+kmsAlias+`"}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), kmsKeyUUID) {
		return fmt.Errorf("DescribeKey: %d %s", resp.StatusCode, b)
	}
	return nil
}

// kmsProxy counts every request that reaches KMS by its X-Amz-Target operation
// and forwards it to local-kms.
type kmsProxy struct {
	target  *url.URL
	mu      sync.Mutex
	counts  map[string]int64
	errors  atomic.Int64
	srv     *http.Server
	address string
}

func startKMSProxy(target string) (*kmsProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &kmsProxy{target: u, counts: map[string]int64{}, address: "http://" + l.Addr().String()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(p.target); r.Out.Host = r.In.Host },
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.errors.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
		if op == "" {
			op = "(none)"
		}
		p.mu.Lock()
		p.counts[op]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(l) }()
	atExit(func() { _ = p.srv.Close() })
	return p, nil
}

func (p *kmsProxy) snapshot() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// ---------------------------------------------------------------- PostgreSQL

// createDatabase creates a database, migrates it as the owner (what `starter
// migrate` does: the worker only checks the schema) and registers its drop.
func createDatabase(ctx context.Context, adminDSN string) (string, string, error) {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return "", "", fmt.Errorf("PostgreSQL at %s: %w (start it: pg_ctlcluster --skip-systemctl-redirect 15 main start)", adminDSN, err)
	}
	defer conn.Close(context.Background())
	name := "dpp_bench_" + randHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	atExit(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for attempt := 0; attempt < 10; attempt++ { // Postgres may be restarting (chaos)
			conn, err := pgx.Connect(ctx, adminDSN)
			if err == nil {
				_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
				conn.Close(context.Background())
			}
			if err == nil {
				return
			}
			time.Sleep(time.Second)
		}
		fmt.Fprintf(os.Stderr, "bench: could not drop database %s\n", name)
	})
	u, err := url.Parse(adminDSN)
	if err != nil {
		return "", "", err
	}
	u.Path = "/" + name
	if _, err := store.MigrateURL(ctx, u.String()); err != nil {
		return "", "", fmt.Errorf("migrate database %s: %w", name, err)
	}
	return u.String(), name, nil
}

// ---------------------------------------------------------------- the worker

// workerSet runs one worker process at a time (restarting it after a kill) and
// keeps every incarnation's log for the leak check.
type workerSet struct {
	bin     string
	env     []string
	dir     string
	http    string
	op      sync.Mutex // serialises kill/restart sequences
	mu      sync.Mutex
	cur     *proc
	all     []*proc
	n       int
	logs    []string
	peakHWM int64 // KiB, max over incarnations
	exits   int   // exits the harness did not cause (e.g. start-up failure while KMS is down)
}

// start starts a new incarnation and waits until it answers /healthz. Callers
// that may race (chaos kills, the supervisor) hold w.op. Any earlier incarnation
// still alive is killed first, so two workers never share the HTTP port.
func (w *workerSet) start(ctx context.Context) error {
	w.mu.Lock()
	for _, old := range w.all {
		if old.alive() {
			w.mu.Unlock()
			old.kill()
			w.mu.Lock()
		}
	}
	w.n++
	logPath := filepath.Join(w.dir, fmt.Sprintf("worker-%d.log", w.n))
	w.logs = append(w.logs, logPath)
	p, err := startProc("worker", logPath, w.env, w.bin)
	if err == nil {
		w.cur = p
		w.all = append(w.all, p)
	}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if !p.alive() {
			return fmt.Errorf("worker exited during start-up: %s", p.tail(3000))
		}
		if healthy(ctx, w.http) && p.alive() {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.kill()
			return fmt.Errorf("worker not healthy after 90s: %s", p.tail(3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (w *workerSet) current() *proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// sample records the current incarnation's peak RSS; it returns VmRSS and VmHWM.
func (w *workerSet) sample() (int64, int64) {
	p := w.current()
	if p == nil || !p.alive() {
		return 0, 0
	}
	rss, hwm := memKB(p.pid())
	w.mu.Lock()
	if hwm > w.peakHWM {
		w.peakHWM = hwm
	}
	w.mu.Unlock()
	return rss, hwm
}

func (w *workerSet) stop() {
	w.sample()
	w.mu.Lock()
	all := append([]*proc(nil), w.all...)
	w.mu.Unlock()
	for _, p := range all {
		p.stop(syscall.SIGTERM, 20*time.Second)
	}
}

// buildBinary runs go build for pkg into dir.
func buildBinary(ctx context.Context, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// repoRoot is the nearest directory above the working directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run the harness inside the repository")
		}
		dir = parent
	}
}
