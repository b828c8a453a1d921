package access_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// Marker values: personal data that must never appear outside the sealed store.
const (
	markerName  = "Zebedee Quarrington-Marker"
	markerEmail = "zebedee.marker@example.invalid"
)

const peopleCSV = `id,name,email,slack_user_id,manager_id
p-dpo,Dana Protector,dpo@example.invalid,UDPO0001,
p-mgr,Morgan Manager,morgan@example.invalid,UMGR0001,p-dpo
p-1,` + markerName + `,` + markerEmail + `,UEMP0001,p-mgr
p-2,Second Person,second@example.invalid,,p-mgr
`

const accountsCSV = `person_id,system,account,amazon_data,service
p-1,postgres,emp_one,true,false
p-2,seller-central,second@shop,true,false
p-mgr,seller-central,morgan@shop,true,false
,seller-central,admin,true,false
p-2,postgres,svc_report,true,true
`

func connect(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newRegistry is a registry on a fresh migrated database, as the worker role,
// sealing with the shared local-kms.
func newRegistry(t *testing.T) (*access.Registry, string) {
	t.Helper()
	dsn := testenv.Database(t)
	v := testenv.VaultForTest(t)
	return &access.Registry{Pool: connect(t, testenv.AsRole(t, dsn, store.WorkerRole)), Vault: v}, dsn
}

func TestImportIsIdempotentAndSealsNames(t *testing.T) {
	ctx := context.Background()
	reg, dsn := newRegistry(t)
	res, err := reg.Import(ctx, strings.NewReader(peopleCSV), strings.NewReader(accountsCSV))
	if err != nil {
		t.Fatal(err)
	}
	if want := "people: 4 added, 0 updated, 0 unchanged; accounts: 5 added, 0 updated, 0 unchanged"; res.String() != want {
		t.Fatalf("first import: %s, want %s", res, want)
	}
	res, err = reg.Import(ctx, strings.NewReader(peopleCSV), strings.NewReader(accountsCSV))
	if err != nil {
		t.Fatal(err)
	}
	if want := "people: 0 added, 0 updated, 4 unchanged; accounts: 0 added, 0 updated, 5 unchanged"; res.String() != want {
		t.Fatalf("second import: %s, want %s", res, want)
	}
	// A changed e-mail is re-sealed; a changed flag updates the account.
	changed := strings.Replace(peopleCSV, "second@example.invalid", "second.new@example.invalid", 1)
	changedAcc := strings.Replace(accountsCSV, "p-2,postgres,svc_report,true,true", "p-2,postgres,svc_report,false,true", 1)
	if res, err = reg.Import(ctx, strings.NewReader(changed), strings.NewReader(changedAcc)); err != nil {
		t.Fatal(err)
	}
	if want := "people: 0 added, 1 updated, 3 unchanged; accounts: 0 added, 1 updated, 4 unchanged"; res.String() != want {
		t.Fatalf("changed import: %s, want %s", res, want)
	}

	// No plaintext name or e-mail anywhere in the database.
	owner := connect(t, dsn)
	var dump string
	if err := owner.QueryRow(ctx, `SELECT string_agg(p::text, ' ') FROM people p`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, "Zebedee") || strings.Contains(dump, "zebedee") || strings.Contains(dump, `\x5a656265646565`) {
		t.Fatal("a person's name or e-mail is stored in plaintext")
	}
	p, err := reg.Person(ctx, "p-1")
	if err != nil || p.ManagerID != "p-mgr" || p.SlackUserID != "UEMP0001" || p.Status != access.StatusActive {
		t.Fatalf("person p-1 = %+v, %v", p, err)
	}
	if _, err := reg.Person(ctx, "p-nobody"); !errors.Is(err, access.ErrUnknownPerson) {
		t.Fatalf("unknown person: %v", err)
	}
}

func TestImportReportsBadRowsAndImportsNothing(t *testing.T) {
	ctx := context.Background()
	reg, _ := newRegistry(t)
	people := peopleCSV + "p-3,,not-an-address " + markerEmail + ",x123,p-ghost\n" + "p-1,Dup,dup@example.invalid,,\n"
	accounts := accountsCSV + "p-ghost,postgres,ghost,true,false\n" + "p-1,Bad System,acc,maybe,false\n"
	_, err := reg.Import(ctx, strings.NewReader(people), strings.NewReader(accounts))
	var ie *access.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("want ImportError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"people line 6: name: is empty",
		"people line 6: email: is not a plain e-mail address",
		"people line 6: slack_user_id: is not a Slack user id",
		"people line 6: manager_id: unknown person id",
		"people line 7: id: same id as line 4",
		"accounts line 7: person_id: unknown person id",
		"accounts line 8: system: must be",
		"accounts line 8: amazon_data: must be true or false",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "zebedee") || strings.Contains(msg, "Zebedee") {
		t.Errorf("the error echoes personal data:\n%s", msg)
	}
	var n int
	if err := reg.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM people) + (SELECT count(*) FROM accounts)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after a failed import: %d, %v", n, err)
	}
	// A wrong header names the columns it wants.
	_, err = reg.Import(ctx, strings.NewReader("id,name,mail,slack_user_id,manager_id\n"), strings.NewReader(accountsCSV))
	if err == nil || !strings.Contains(err.Error(), "people line 1: header: columns must be exactly id,name,email,slack_user_id,manager_id") {
		t.Fatalf("bad header: %v", err)
	}
}

func TestBuildItems(t *testing.T) {
	people := map[string]access.Person{
		"p-dpo": {ID: "p-dpo", Status: access.StatusActive},
		"p-mgr": {ID: "p-mgr", ManagerID: "p-dpo", Status: access.StatusActive},
		"p-1":   {ID: "p-1", ManagerID: "p-mgr", Status: access.StatusActive},
		"p-2":   {ID: "p-2", ManagerID: "p-mgr", Status: access.StatusTerminated, TerminatedAt: &time.Time{}},
	}
	registry := []access.Account{
		{System: "postgres", Account: "emp_one", PersonID: "p-1"},
		{System: "postgres", Account: "svc_report", PersonID: "p-2", Service: true},
		{System: "seller-central", Account: "admin"},
		{System: "seller-central", Account: "morgan@shop", PersonID: "p-mgr"},
	}
	found := []access.Found{
		{System: "postgres", Account: "emp_one"},
		{System: "postgres", Account: "postgres", Protected: access.ProtectedSuperuser},
		{System: "postgres", Account: "stray"},
		{System: "postgres", Account: "svc_report"},
		{System: "postgres", Account: "gone", Disabled: true},
		{System: "seller-central", Account: "admin"},
		{System: "seller-central", Account: "morgan@shop"},
	}
	conn := func(s string) string {
		if s == "postgres" {
			return access.ConnectorPostgres
		}
		return access.ConnectorRegistry
	}
	items := access.BuildItems(found, conn, registry, people, "p-dpo")
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%s %s/%s %s %v flagged=%v", it.ID, it.System, it.Account, it.Reviewer, it.Flags, it.Flagged()))
	}
	want := []string{
		"1 postgres/emp_one p-mgr [] flagged=false",
		"2 postgres/postgres p-dpo [orphan shared protected] flagged=true",
		"3 postgres/stray p-dpo [orphan] flagged=true",
		"4 postgres/svc_report p-mgr [leaver] flagged=false",
		"5 seller-central/admin p-dpo [unmapped shared] flagged=true",
		"6 seller-central/morgan@shop p-dpo [] flagged=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
