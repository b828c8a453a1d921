package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestLockoutDisablesARealRoleAndOnlyTheDPOReenablesIt(t *testing.T) {
	ctx := context.Background()
	reg, dsn := newRegistry(t)
	signer, err := evidence.LoadOrCreateSigner(ctx, reg.Pool, reg.Vault)
	if err != nil {
		t.Fatal(err)
	}
	reg.Signer = signer
	roles := newPGRoles(t, dsn)
	var dbName string
	if err := roles.admin.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	connectGrant := `GRANT CONNECT ON DATABASE ` + pgx.Identifier{dbName}.Sanitize() + ` TO $ROLE`
	connRole := roles.create("dpp_access_connector", "LOGIN CREATEROLE", `GRANT pg_signal_backend TO $ROLE`, connectGrant)
	victim := roles.create("emp_locked", "LOGIN", `GRANT `+store.AuditorRole+` TO $ROLE`, connectGrant)
	if _, err := reg.Import(ctx, strings.NewReader(peopleCSV), strings.NewReader(accountsCSV)); err != nil {
		t.Fatal(err)
	}
	svc := &access.Service{Registry: reg, DPO: "p-dpo", Connectors: access.Connectors{
		&access.PostgresConnector{Pool: connect(t, testenv.AsRole(t, dsn, connRole))},
		&access.RegistryConnector{Registry: reg, Automatic: []string{access.SystemPostgres}},
	}}
	h := access.LoginEventsHandler(svc, 10, zap.NewExample())
	post := func(events []access.LoginEvent) (int, map[string]any) {
		b, _ := json.Marshal(map[string]any{"events": events})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/access/login-events", bytes.NewReader(b)))
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	ev := func(i int, outcome string) access.LoginEvent {
		return access.LoginEvent{System: "postgres", Account: victim, Outcome: outcome, At: t0.Add(time.Duration(i) * time.Second)}
	}
	// 9 failures, a success (the streak restarts), 9 failures: not locked.
	var events []access.LoginEvent
	for i := 0; i < 9; i++ {
		events = append(events, ev(i, access.OutcomeFailure))
	}
	events = append(events, ev(9, access.OutcomeSuccess))
	for i := 10; i < 19; i++ {
		events = append(events, ev(i, access.OutcomeFailure))
	}
	if code, out := post(events); code != 200 || fmt.Sprint(out["applied"]) != "19" || len(out["locks"].([]any)) != 0 {
		t.Fatalf("first batch: %d %v", code, out)
	}
	// The same log again counts nothing; the tenth consecutive failure locks.
	if code, out := post(events); code != 200 || fmt.Sprint(out["applied"]) != "0" {
		t.Fatalf("replayed batch: %d %v", code, out)
	}
	code, out := post([]access.LoginEvent{ev(19, access.OutcomeFailure)})
	if code != 200 || len(out["locks"].([]any)) != 1 || out["locks"].([]any)[0].(map[string]any)["disabled"] != true {
		t.Fatalf("tenth failure: %d %v", code, out)
	}
	if _, err := pgx.Connect(ctx, testenv.AsRole(t, dsn, victim)); err == nil || !strings.Contains(err.Error(), "not permitted to log in") {
		t.Fatalf("a locked role still logs in: %v", err)
	}
	recs, err := evidence.Get(ctx, reg.Pool, "postgres/"+victim, access.KindLockout)
	if err != nil || len(recs) != 1 {
		t.Fatalf("lockout evidence: %d, %v", len(recs), err)
	}

	// Bad input: a clear error naming the field.
	if code, _ := post([]access.LoginEvent{{System: "postgres", Account: victim, Outcome: "maybe", At: t0}}); code != 400 {
		t.Fatalf("bad outcome: %d", code)
	}

	if err := svc.Reenable(ctx, "postgres", victim, "p-mgr"); err == nil {
		t.Fatal("a manager re-enabled a locked account")
	}
	if err := svc.Reenable(ctx, "postgres", victim, "p-dpo"); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, testenv.AsRole(t, dsn, victim))
	if err != nil {
		t.Fatalf("after the DPO's approval: %v", err)
	}
	c.Close(ctx)
	if recs, _ := evidence.Get(ctx, reg.Pool, "postgres/"+victim, access.KindReenable); len(recs) != 1 || !strings.Contains(string(recs[0].Body), `"approvedBy":"p-dpo"`) {
		t.Fatalf("re-enable evidence: %v", recs)
	}
}
