package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/devstack"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/workflows"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------- Temporal

// startTemporal runs bin/temporal server start-dev through devstack (the arguments the tests use:
// loopback, SQLite file in WAL mode, headless, workflows' search attributes) with its files in dir.
func startTemporal(ctx context.Context, dir string) (*devstack.Temporal, error) {
	t, err := devstack.NewTemporal(devstack.TemporalOptions{Dir: dir, SearchAttributes: workflows.SearchAttributeFlags()})
	if err != nil {
		return nil, err
	}
	atExit(t.Stop)
	return t, t.Start(ctx)
}

// ---------------------------------------------------------------- local-kms and its counting proxy

const (
	kmsKeyUUID = "0b3c5d1e-7f4a-4c2b-9e8d-6a5f4e3d2c1b"
	kmsAccount = "111122223333"
	kmsRegion  = "eu-west-2"
	kmsAlias   = "alias/dpp-bench"
)

// startKMS runs local-kms through devstack with its keys in dir; chaos kills it and starts it
// again on the same port with the same keys.
func startKMS(ctx context.Context, dir string) (*devstack.KMS, error) {
	k, err := devstack.NewKMS(devstack.KMSOptions{Dir: dir, KeyID: kmsKeyUUID, Alias: kmsAlias,
		Description: "dpp bench key", Region: kmsRegion, AccountID: kmsAccount})
	if err != nil {
		return nil, err
	}
	atExit(k.Stop)
	return k, k.Start(ctx)
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
	cur     *devstack.Proc
	all     []*devstack.Proc
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
		if old.Alive() {
			w.mu.Unlock()
			old.Kill()
			w.mu.Lock()
		}
	}
	w.n++
	logPath := filepath.Join(w.dir, fmt.Sprintf("worker-%d.log", w.n))
	w.logs = append(w.logs, logPath)
	p, err := devstack.StartProc("worker", logPath, w.env, w.bin)
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
		if !p.Alive() {
			return fmt.Errorf("worker exited during start-up: %s", p.Tail(3000))
		}
		if healthy(ctx, w.http) && p.Alive() {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Kill()
			return fmt.Errorf("worker not healthy after 90s: %s", p.Tail(3000))
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

func (w *workerSet) current() *devstack.Proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// sample records the current incarnation's peak RSS; it returns VmRSS and VmHWM.
func (w *workerSet) sample() (int64, int64) {
	p := w.current()
	if p == nil || !p.Alive() {
		return 0, 0
	}
	rss, hwm := devstack.Memory(p.Pid())
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
	all := append([]*devstack.Proc(nil), w.all...)
	w.mu.Unlock()
	for _, p := range all {
		p.Stop(syscall.SIGTERM, 20*time.Second)
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
