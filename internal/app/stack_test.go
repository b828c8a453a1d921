package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

// marker is appended to every PII string the sandbox generates: finding it
// anywhere outside ciphertext is a leak.
const marker = "PIIMARKER7Q"

func TestMain(m *testing.M) {
	// local-kms accepts any credentials; the SDK only needs some.
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	code := m.Run()
	testenv.StopAll()
	testenv.StopTemporal()
	os.Exit(code)
}

// syncBuffer collects every log line of a stack, for the no-PII-in-logs check.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Sync() error { return nil }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stack is the whole system on real components: the Temporal dev server,
// PostgreSQL, local-kms and the SP-API sandbox, wired by app.New as in production.
type stack struct {
	t       *testing.T
	env     map[string]string
	sandbox *sandbox.Server
	logs    *syncBuffer
	app     *app.App
	worker  worker.Worker
}

func newStack(t *testing.T, tweak func(env map[string]string, opts *sandbox.Options)) *stack {
	t.Helper()
	temporal := testenv.TemporalForTest(t)
	kms := testenv.KMSForTest(t)
	opts := sandbox.Options{Seed: testSeed(t), Marker: marker, DeliveryAfter: time.Hour,
		LatestDeliveryAfter: 2 * time.Hour, Limits: sandbox.TestLimits()}
	// The worker connects as its least-privileged role; the database was migrated
	// as the owner (testenv clones a migrated template, as `starter migrate` leaves it).
	// DPP_MIGRATIONS_DATABASE_URL stays for the tests that read as the owner (pg_dump).
	ownerDSN := testenv.Database(t)
	env := map[string]string{
		"DATABASE_URL":          testenv.AsRole(t, ownerDSN, store.WorkerRole),
		"TEMPORAL_ADDRESS":      temporal.Address,
		"TEMPORAL_NAMESPACE":    temporal.Namespace,
		"DPP_TASK_QUEUE":        testenv.TaskQueue(t),
		"AWS_REGION":            "eu-west-2",
		"AWS_ENDPOINT_URL_KMS":  kms.Endpoint,
		"DPP_KMS_KEY_ID":        kms.KeyID,
		"DPP_PII_RETENTION":     "3s",
		"DPP_SYNC_SETTLE":       "0s",
		"DPP_SELLER_NAME":       "Plusranger Ltd",
		"DPP_SELLER_ADDRESS":    "Unit 4, Riverside Park|Leeds|LS1 4AB|United Kingdom",
		"DPP_SELLER_VAT_NUMBER": "GB123456789",
		"DPP_LOG_LEVEL":         "debug",
		"DPP_OPERATORS":         "dpo,tester",
		// The sandbox at a thousand times Amazon's rates: tests are not paced
		// by the SP-API task queues unless they say so.
		"DPP_SPAPI_SANDBOX_SPEEDUP": "1000",
	}
	env["DPP_MIGRATIONS_DATABASE_URL"] = ownerDSN
	if tweak != nil {
		tweak(env, &opts)
	}
	sb, url := sandboxtest.Start(t, opts)
	env["SPAPI_ENDPOINT"] = url
	if env["LWA_CLIENT_ID"] != "" { // a tweak gave credentials: the sandbox's LWA issues the tokens
		env["LWA_TOKEN_URL"] = sandboxtest.TokenURL(url)
	}
	s := &stack{t: t, env: env, sandbox: sb, logs: &syncBuffer{}}
	s.start()
	t.Cleanup(func() { s.stop() })
	return s
}

// testSeed returns the seed of the test's sandbox: DPP_TEST_SEED when set, so a
// failure can be reproduced, else a new one. It is logged either way.
func testSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if v := os.Getenv("DPP_TEST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("DPP_TEST_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed=%d (rerun with DPP_TEST_SEED=%d)", seed, seed)
	return seed
}

// start builds the app and starts a worker, as worker/main.go does.
func (s *stack) start() {
	s.t.Helper()
	cfg, err := config.Load(func(k string) string { return s.env[k] })
	if err != nil {
		s.t.Fatal(err)
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), s.logs, zapcore.DebugLevel))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.app, err = app.New(ctx, cfg, app.Options{Logger: log}); err != nil {
		s.t.Fatal(err)
	}
	s.worker = s.app.NewWorker()
	if err := s.worker.Start(); err != nil {
		s.t.Fatal(err)
	}
}

// stop stops the worker and closes every connection, like a process exit.
func (s *stack) stop() {
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
	if s.app != nil {
		s.app.Close()
		s.app = nil
	}
}

func (s *stack) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s.t.Cleanup(cancel)
	return ctx
}

func (s *stack) must(err error, what string, args ...any) {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
