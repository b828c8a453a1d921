package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

// The test binary runs main() itself when asked, so the real start-up path is
// what exits (no copy of it).
func TestMain(m *testing.M) {
	if os.Getenv("DPP_WORKER_RUN_MAIN") == "1" {
		os.Args = append([]string{"worker"}, strings.Fields(os.Getenv("DPP_WORKER_ARGS"))...)
		main()
		os.Exit(0)
	}
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

func runWorker(t *testing.T, args string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{"DPP_WORKER_RUN_MAIN=1", "DPP_WORKER_ARGS=" + args, "PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestBadConfigurationExitsAtOnceNamingEveryProblem(t *testing.T) {
	out, code := runWorker(t, "", "DPP_PII_RETENTION=thirty days", "DPP_SELLER_VAT_NUMBER=12345")
	if code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, out)
	}
	for _, want := range []string{"DPP_KMS_KEY_ID", "DPP_SELLER_NAME", "DPP_SELLER_ADDRESS", "DPP_PII_RETENTION", "DPP_SELLER_VAT_NUMBER"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}

func TestVersionPrintsVersionAndCommit(t *testing.T) {
	out, code := runWorker(t, "-version")
	if code != 0 || strings.TrimSpace(out) != "worker dev (commit unknown)" {
		t.Fatalf("worker -version: exit %d, %q; want 0 and the unstamped build's \"worker dev (commit unknown)\"", code, out)
	}
}

// TestHealthcheckFailsWithoutAWorker: with nothing listening on DPP_HTTP_ADDR
// the image's HEALTHCHECK reports unhealthy, naming the variable.
func TestHealthcheckFailsWithoutAWorker(t *testing.T) {
	out, code := runWorker(t, "-healthcheck", "DPP_HTTP_ADDR="+testenv.FreeAddr(t))
	if code != 1 || !strings.Contains(out, "DPP_HTTP_ADDR") {
		t.Fatalf("worker -healthcheck with no worker: exit %d, %q; want 1 naming DPP_HTTP_ADDR", code, out)
	}
}

func TestHelpListsTheSettings(t *testing.T) {
	out, code := runWorker(t, "-help")
	if code != 0 {
		t.Fatalf("worker -help exit code %d, want 0; output:\n%s", code, out)
	}
	for _, want := range []string{"DATABASE_URL", "DPP_PII_RETENTION", "720h", "(required)", "DPP_CODEC_PREVIOUS_KMS_KEY_IDS", "DPP_CODEC_MAX_DECODED", "16MiB", "DPP_METRICS_REFRESH"} {
		if !strings.Contains(out, want) {
			t.Errorf("-help lacks %s:\n%s", want, out)
		}
	}
}

// TestRefusesASchemaThatIsBehind: the worker never migrates; on a database an
// older release left behind it exits at once, naming what is missing and
// `starter migrate`, before it contacts KMS or Temporal.
func TestRefusesASchemaThatIsBehind(t *testing.T) {
	dsn := testenv.EmptyDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	err = store.MigrateTo(ctx, pool, 3)
	pool.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, code := runWorker(t, "", "DATABASE_URL="+dsn, "DPP_KMS_KEY_ID=alias/not-reached",
		"DPP_SELLER_NAME=Plusranger Ltd", "DPP_SELLER_ADDRESS=1 High St|Leeds", "DPP_SELLER_VAT_NUMBER=GB123456789",
		"TEMPORAL_ADDRESS=127.0.0.1:1")
	if code != 1 || !strings.Contains(out, "migration 00004") || !strings.Contains(out, "`starter migrate`") {
		t.Fatalf("exit code %d, want 1 naming migration 00004 and starter migrate; output:\n%s", code, out)
	}
	t.Logf("%s", out)
	var version int
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil || version != 3 {
		t.Fatalf("schema version %d after the refused start (%v): the worker must not migrate", version, err)
	}
}

// TestSlackNeedsItsSigningSecret: a bot token without the signing secret (the
// worker would post buttons whose clicks it cannot verify) and a public
// listener on the operator listener's address stop the worker at once, named,
// without echoing the token.
func TestSlackNeedsItsSigningSecret(t *testing.T) {
	out, code := runWorker(t, "", "DPP_KMS_KEY_ID=alias/x", "DPP_SELLER_NAME=Plusranger Ltd", "DPP_SELLER_ADDRESS=1 High St|Leeds",
		"DPP_SELLER_VAT_NUMBER=GB123456789", "SLACK_BOT_TOKEN=xoxb-111-222-SECRETTOKEN", "DPP_PUBLIC_ADDR=127.0.0.1:8088")
	if code != 2 || !strings.Contains(out, "SLACK_SIGNING_SECRET is required when SLACK_BOT_TOKEN is set") || !strings.Contains(out, "DPP_PUBLIC_ADDR") {
		t.Fatalf("exit code %d, want 2 naming SLACK_SIGNING_SECRET and DPP_PUBLIC_ADDR; output:\n%s", code, out)
	}
	if strings.Contains(out, "SECRETTOKEN") {
		t.Fatalf("the output echoes the bot token:\n%s", out)
	}
}
