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
	"strings"
	"sync"
	"sync/atomic"
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
