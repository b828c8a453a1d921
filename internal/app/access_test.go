package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestLockoutThroughThePublicListener: the production wiring of the lockout:
// login events posted to /access/login-events on the public listener with the
// ingest token, ten consecutive failures disable a real PostgreSQL role through
// the postgres connector (DPP_ACCESS_POSTGRES_URL), the owner and the DPO hear
// of it in Slack, and the lock is in the evidence log.
func TestLockoutThroughThePublicListener(t *testing.T) {
	ctx := context.Background()
	sl := testenv.StartSlack(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	victim, conn := "emp_lock_"+suffix, "dpp_access_app_"+suffix
	var base string
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		owner := env["DPP_MIGRATIONS_DATABASE_URL"]
		admin, err := pgx.Connect(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		var db string
		_ = admin.QueryRow(ctx, `SELECT current_database()`).Scan(&db)
		for _, stmt := range []string{
			`CREATE ROLE ` + conn + ` LOGIN CREATEROLE`, `GRANT pg_signal_backend TO ` + conn,
			`CREATE ROLE ` + victim + ` LOGIN`, `GRANT SELECT ON orders TO ` + victim,
			`GRANT CONNECT ON DATABASE ` + pgx.Identifier{db}.Sanitize() + ` TO ` + victim + `, ` + conn,
		} {
			if _, err := admin.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			admin, err := pgx.Connect(context.Background(), owner)
			if err != nil {
				return
			}
			defer admin.Close(context.Background())
			for _, r := range []string{victim, conn} {
				_, _ = admin.Exec(context.Background(), `DROP OWNED BY `+r)
				_, _ = admin.Exec(context.Background(), `DROP ROLE `+r)
			}
		})
		env["DPP_ACCESS_POSTGRES_URL"] = testenv.AsRole(t, owner, conn)
		env["DPP_DPO_PERSON_ID"] = "p-dpo"
		env["SLACK_BOT_TOKEN"] = "xoxb-e2e"
		env["SLACK_SIGNING_SECRET"] = testSigningSecret
		env["SLACK_API_URL"] = sl.APIURL()
		env["DPP_PUBLIC_ADDR"] = freeAddr(t)
		env["DPP_INGEST_TOKEN"] = ingestToken
	})
	base = servePublic(t, s.app)
	svc, err := s.app.AccessService(ctx)
	s.must(err, "access service")
	_, err = svc.Registry.Import(ctx,
		strings.NewReader("id,name,email,slack_user_id,manager_id\np-dpo,Dana "+marker+",dpo@example.invalid,U0DPO,\np-1,Alex "+marker+",alex@example.invalid,U0P1,p-dpo\n"),
		strings.NewReader("person_id,system,account,amazon_data,service\np-1,postgres,"+victim+",true,false\n"))
	s.must(err, "import")

	post := func(token string, events []access.LoginEvent) (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{"events": events})
		req, _ := http.NewRequest(http.MethodPost, base+app.LoginEventsPath, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		s.must(err, "POST login events")
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var events []access.LoginEvent
	for i := range 10 {
		events = append(events, access.LoginEvent{System: "postgres", Account: victim, Outcome: access.OutcomeFailure, At: t0.Add(time.Duration(i) * time.Second)})
	}
	if code, _ := post("", events); code != http.StatusUnauthorized {
		t.Fatalf("without the ingest token: HTTP %d", code)
	}
	code, out := post(ingestToken, events)
	if code != http.StatusOK || len(out["locks"].([]any)) != 1 {
		t.Fatalf("ten failures: HTTP %d %v", code, out)
	}
	if _, err := pgx.Connect(ctx, testenv.AsRole(t, s.env["DPP_MIGRATIONS_DATABASE_URL"], victim)); err == nil || !strings.Contains(err.Error(), "not permitted to log in") {
		t.Fatalf("the locked role still logs in: %v", err)
	}
	recs, err := evidence.Get(ctx, s.app.Pool, "postgres/"+victim, access.KindLockout)
	if err != nil || len(recs) != 1 {
		t.Fatalf("lockout evidence: %d %v", len(recs), err)
	}
	var told []string
	for _, m := range sl.Messages() {
		if strings.Contains(m.Text, victim) {
			told = append(told, m.Channel)
		}
	}
	if strings.Join(told, ",") != testenv.DMChannel("U0DPO")+","+testenv.DMChannel("U0P1") {
		t.Fatalf("told in Slack: %v", told)
	}
	s.assertNoPII("logs", []byte(s.logs.String()))
}
