package accessslack_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slack-go/slack"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/accessslack"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/internal/vault"
	"github.com/plusranger/dpp/workflows"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

const signingSecret = "access-e2e-signing-secret-0123"

// Personal data that must never reach a workflow's history.
const (
	markerName  = "Ottoline Marker-Vasquez"
	markerEmail = "ottoline.marker@example.invalid"
	// A name written into the reason form although it asks for none.
	markerReason = "kept for Bartholomew Reasonmark, ticket SEC-7"
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReviewEndToEndWithTheDevServer(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Database(t)
	k := testenv.KMSForTest(t)
	kc, err := k.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(kc, k.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, testenv.AsRole(t, dsn, store.WorkerRole))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	signer, err := evidence.LoadOrCreateSigner(ctx, pool, v)
	if err != nil {
		t.Fatal(err)
	}

	// A login role of person p-1 that reaches the tables through dpp_auditor,
	// and the connector's role.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	var dbName string
	_ = admin.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName)
	emp, conn := "emp_e2e_"+suffix, "dpp_access_e2e_"+suffix
	for _, stmt := range []string{
		`CREATE ROLE ` + conn + ` LOGIN CREATEROLE`, `GRANT pg_signal_backend TO ` + conn,
		`CREATE ROLE ` + emp + ` LOGIN`, `GRANT ` + store.AuditorRole + ` TO ` + emp,
		`GRANT CONNECT ON DATABASE ` + pgx.Identifier{dbName}.Sanitize() + ` TO ` + emp + `, ` + conn,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range []string{emp, conn} {
			_, _ = admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1`, r)
			_, _ = admin.Exec(context.Background(), `DROP OWNED BY `+r)
			_, _ = admin.Exec(context.Background(), `DROP ROLE `+r)
		}
	})
	connPool, err := pgxpool.New(ctx, testenv.AsRole(t, dsn, conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(connPool.Close)

	reg := &access.Registry{Pool: pool, Vault: v, Signer: signer}
	people := "id,name,email,slack_user_id,manager_id\n" +
		"p-dpo,Dana Protector,dpo@example.invalid,UDPO0001,\n" +
		"p-mgr,Morgan Manager,morgan@example.invalid,UMGR0001,p-dpo\n" +
		"p-1," + markerName + "," + markerEmail + ",UEMP0001,p-mgr\n"
	accounts := "person_id,system,account,amazon_data,service\n" + "p-1,postgres," + emp + ",true,false\n"
	if _, err := reg.Import(ctx, strings.NewReader(people), strings.NewReader(accounts)); err != nil {
		t.Fatal(err)
	}

	sl := testenv.StartSlack(t)
	notifier := slackapp.NewMessenger("xoxb-test", sl.APIURL())
	svc := &access.Service{Registry: reg, DPO: "p-dpo", Slack: notifier, Connectors: access.Connectors{
		&access.PostgresConnector{Pool: connPool},
		&access.RegistryConnector{Registry: reg, Automatic: []string{access.SystemPostgres}},
	}}

	// Payloads encrypted as in production (and as the replay test expects).
	cdc, err := codec.New(kc, codec.Options{KeyID: k.KeyID})
	if err != nil {
		t.Fatal(err)
	}
	dc, fc := cdc.Converters()
	tmp := testenv.TemporalForTest(t)
	c, err := client.Dial(client.Options{HostPort: tmp.Address, Namespace: tmp.Namespace, DataConverter: dc, FailureConverter: fc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tq := testenv.TaskQueue(t)
	w := worker.New(c, tq, worker.Options{Interceptors: []interceptor.WorkerInterceptor{cdc.WorkerInterceptor()}})
	workflows.Register(w, workflows.Options{Access: workflows.AccessOptions{
		Reminders: []time.Duration{time.Hour}, Escalation: 2 * time.Hour, Deadline: 3 * time.Hour,
		SLA: 24 * time.Hour, Escalations: []time.Duration{12 * time.Hour}, DPO: "p-dpo"}})
	texts := &freetext.Store{Pool: pool, Vault: v, Signer: signer}
	(&activities.Access{Service: svc, Texts: texts}).Register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	campaign := "e2e-" + suffix
	wfID := workflows.AccessReviewWorkflowID(campaign)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: tq,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE}, workflows.AccessReviewName,
		workflows.AccessReviewInput{Campaign: campaign})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), wfID, "", "test over") })
	// Starting it twice is a no-op.
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: tq,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true}, workflows.AccessReviewName,
		workflows.AccessReviewInput{Campaign: campaign}); err == nil {
		t.Fatal("a second start of the campaign succeeded")
	}

	// The manager gets one message with the item and its buttons.
	dm := func(user string) (testenv.SlackMessage, bool) {
		for _, m := range sl.Messages() {
			if m.Channel == testenv.DMChannel(user) {
				return m, true
			}
		}
		return testenv.SlackMessage{}, false
	}
	message := func(user string) string { m, _ := dm(user); return m.BlocksJSON() }
	eventually(t, "the manager's message", func() bool { return strings.Contains(message("UMGR0001"), emp) })
	msg := message("UMGR0001")
	if !strings.Contains(msg, access.ActionRevoke) || !strings.Contains(msg, access.ActionKeep) {
		t.Fatalf("the message has no Keep/Revoke buttons: %s", msg)
	}
	var st workflows.AccessReviewStatus
	q, err := c.QueryWorkflow(ctx, wfID, "", workflows.QueryStatus)
	if err != nil || q.Get(&st) != nil {
		t.Fatalf("status: %v", err)
	}
	if got := complianceDeadline(t, c, wfID); !got.Equal(st.Deadline) {
		t.Fatalf("ComplianceDeadline %s, the review's deadline %s", got, st.Deadline)
	}
	itemID := ""
	for _, it := range st.Items {
		if it.Account == emp {
			itemID = it.ID
		}
	}
	if itemID == "" {
		t.Fatalf("no item for %s in %+v", emp, st.Items)
	}

	// The handlers behind the real router, which verifies Slack's signature.
	h := &accessslack.Handlers{Temporal: c, Registry: reg, UI: notifier, TaskQueue: tq, DPO: "p-dpo", Texts: texts}
	router := slackapp.NewRouter(signingSecret, zap.NewNop())
	router.OnAction(access.ActionPrefix, h.Action)
	router.OnView(access.ViewReason, h.ReasonView)
	router.OnCommand(accessslack.Command, h.Offboard)
	interactions := httptest.NewServer(router.Interactions())
	t.Cleanup(interactions.Close)
	commands := httptest.NewServer(router.Commands())
	t.Cleanup(commands.Close)
	post := func(target string, body []byte, sign bool) int {
		t.Helper()
		req, err := testenv.SignedSlackRequest(target, signingSecret, time.Now(), body)
		if err != nil {
			t.Fatal(err)
		}
		if !sign {
			req.Header.Del("X-Slack-Signature")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	mgrMsg, _ := dm("UMGR0001")
	clickBody := func(user, actionID, value string) []byte {
		b, err := testenv.InteractionBody(sl.BlockClick(user, mgrMsg.Channel, mgrMsg.TS, actionID, value))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	click := func(user, actionID, value string) {
		t.Helper()
		if code := post(interactions.URL, clickBody(user, actionID, value), true); code != http.StatusOK {
			t.Fatalf("click by %s: HTTP %d", user, code)
		}
	}
	// Unsigned, or replayed: 401 and nothing happens.
	revokeClick := clickBody("UMGR0001", access.ActionRevoke, access.ItemValue(campaign, itemID))
	if code := post(interactions.URL, revokeClick, false); code != http.StatusUnauthorized {
		t.Fatalf("unsigned click: HTTP %d", code)
	}
	// Someone else's click: an ephemeral "not yours", nothing else.
	click("UEMP0001", access.ActionRevoke, access.ItemValue(campaign, itemID))
	if e := sl.Ephemerals(); len(e) != 1 || e[0].User != "UEMP0001" || !strings.Contains(e[0].Text, "is not yours to decide") {
		t.Fatalf("ephemerals after a stranger's click: %+v", e)
	}
	// The reviewer revokes; a double click changes nothing.
	session, err := pgx.Connect(ctx, testenv.AsRole(t, dsn, emp))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(ctx)
	if code := post(interactions.URL, revokeClick, true); code != http.StatusOK {
		t.Fatalf("signed click: HTTP %d", code)
	}
	if code := post(interactions.URL, revokeClick, true); code != http.StatusUnauthorized {
		t.Fatalf("replayed click: HTTP %d", code)
	}
	click("UMGR0001", access.ActionRevoke, access.ItemValue(campaign, itemID))
	if e := sl.Ephemerals(); len(e) != 2 || !strings.Contains(e[1].Text, "was already decided: revoke by p-mgr") {
		t.Fatalf("ephemerals after a double click: %+v", e)
	}

	// Carried out and verified on the real server within seconds.
	eventually(t, "the revocation to be verified", func() bool {
		q, err := c.QueryWorkflow(ctx, wfID, "", workflows.QueryStatus)
		if err != nil || q.Get(&st) != nil {
			return false
		}
		for _, it := range st.Items {
			if it.Account == emp {
				return it.VerifiedAt != nil
			}
		}
		return false
	})
	if _, err := pgx.Connect(ctx, testenv.AsRole(t, dsn, emp)); err == nil || !strings.Contains(err.Error(), "not permitted to log in") {
		t.Fatalf("a revoked role still logs in: %v", err)
	}
	if _, err := session.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("the revoked role's session survived")
	}
	// The message shows who decided what.
	eventually(t, "the message to be updated", func() bool { return strings.Contains(message("UMGR0001"), "revoked by p-mgr") })
	if m, _ := dm("UMGR0001"); m.Updates == 0 {
		t.Fatal("the message was posted again instead of updated")
	}

	// Evidence: the decision and the verified execution.
	for _, kind := range []string{access.KindDecision, access.KindExecution} {
		recs, err := evidence.Get(ctx, pool, wfID, kind)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%s evidence: %d, %v", kind, len(recs), err)
		}
	}
	rep, err := access.CampaignReport(ctx, pool, campaign, nil)
	if err != nil || rep.Revoked != 1 || rep.Verified != 1 || rep.Items[0].Account != emp {
		t.Fatalf("report: %+v, %v", rep, err)
	}

	// Keep on a flagged account (the orphan dpp_worker role) opens the reason
	// modal; its submission keeps it with the reason.
	orphan := ""
	for _, it := range st.Items {
		if it.Account == store.WorkerRole {
			orphan = it.ID
		}
	}
	click("UDPO0001", access.ActionKeep, access.ItemValue(campaign, orphan))
	if v := sl.Views(); len(v) != 1 || v[0].View.CallbackID != access.ViewReason || v[0].View.PrivateMetadata != access.ItemValue(campaign, orphan) {
		t.Fatalf("modals: %+v", v)
	}
	views := 0
	submit := func(reason string) *slack.ViewSubmissionResponse {
		views++
		ic := &slack.InteractionCallback{User: slack.User{ID: "UDPO0001"}, View: slack.View{ID: fmt.Sprintf("V%04d", views),
			PrivateMetadata: access.ItemValue(campaign, orphan), State: &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
				access.ReasonInput: {access.ReasonInput: {Value: reason}}}}}}
		resp, err := h.ReasonView(ctx, ic)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := submit(" "); resp == nil || resp.Errors[access.ReasonInput] == "" {
		t.Fatalf("an empty reason was accepted: %+v", resp)
	}
	if resp := submit(markerReason); resp != nil {
		t.Fatalf("the reason was refused: %+v", resp.Errors)
	}
	// A second submission is refused (already decided): its sealed text is
	// erased at once, and the first one stands.
	if resp := submit("second thoughts of Bartholomew Reasonmark"); resp == nil || !strings.Contains(resp.Errors[access.ReasonInput], "already decided") {
		t.Fatalf("a second keep: %+v", resp)
	}
	q, _ = c.QueryWorkflow(ctx, wfID, "", workflows.QueryStatus)
	_ = q.Get(&st)
	reasonRef := ""
	for _, it := range st.Items {
		if it.ID == orphan {
			if it.Decision != access.DecisionKeep || it.Reason != "" || it.ReasonRef == "" {
				t.Fatalf("orphan item after the modal: the workflow holds the reason's ref only, got %+v", it)
			}
			reasonRef = it.ReasonRef
		}
	}
	sh, err := texts.Read(ctx, reasonRef)
	if err != nil || sh.String() != markerReason {
		t.Fatalf("the status's reason ref opens to %q, %v", sh.String(), err)
	}
	eventually(t, "the keep's evidence", func() bool {
		recs, _ := evidence.Get(ctx, pool, wfID, access.KindDecision)
		return len(recs) == 2
	})
	rep, err = access.CampaignReport(ctx, pool, campaign, v)
	if err != nil {
		t.Fatal(err)
	}
	keptRow := func(rep access.Report) access.ReportRow {
		for _, r := range rep.Items {
			if r.ItemID == orphan {
				return r
			}
		}
		t.Fatalf("no row for the kept item in %+v", rep.Items)
		return access.ReportRow{}
	}
	if r := keptRow(rep); r.Reason != markerReason || r.ReasonRef != reasonRef {
		t.Fatalf("the report with the key shows %q (ref %q)", r.Reason, r.ReasonRef)
	}
	if rep, err = access.CampaignReport(ctx, pool, campaign, nil); err != nil || !strings.HasPrefix(keptRow(rep).Reason, "sealed until ") {
		t.Fatalf("the report without the key: %+v %v", keptRow(rep), err)
	}
	var refusedErased bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM free_texts WHERE ref <> $1 AND erased_at IS NOT NULL)`, reasonRef).Scan(&refusedErased); err != nil || !refusedErased {
		t.Fatalf("the refused submission's text was not erased: %v", err)
	}

	// The history holds ids only, and no trace of the refused updates.
	iter := c.GetWorkflowHistory(ctx, wfID, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	accepted, sawEmp := 0, false
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		// Decrypted as the Web UI would show it; text format prints payload
		// bytes as (escaped) text, so JSON payloads read plainly.
		if err := proxy.VisitPayloads(ctx, ev, proxy.VisitPayloadsOptions{
			Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
				return cdc.Decode(p)
			},
		}); err != nil {
			t.Fatal(err)
		}
		raw := []byte(prototext.Format(ev))
		for _, marker := range []string{"Ottoline", "Marker-Vasquez", "ottoline.marker", "Reasonmark"} {
			if strings.Contains(string(raw), marker) {
				t.Fatalf("history event %d (%s) carries personal data: %s", ev.GetEventId(), ev.GetEventType(), raw)
			}
		}
		sawEmp = sawEmp || strings.Contains(string(raw), emp)
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
			accepted++
		}
		if strings.Contains(string(raw), "not yours") || strings.Contains(string(raw), "already decided") {
			t.Fatalf("a refused update left a trace in history: event %d", ev.GetEventId())
		}
	}
	if !sawEmp {
		t.Fatal("the history check read no payload (the item's account never appeared)")
	}
	if accepted != 2 {
		t.Fatalf("%d accepted updates in history, want 2", accepted)
	}

	// /offboard: only DPP_OFFBOARDING_REQUESTERS; starts offboarding-<personId>.
	h.Requesters = []string{"p-dpo"}
	if code := post(commands.URL, testenv.CommandBody(accessslack.Command, "UMGR0001", "C1", "<@UEMP0001|someone>", ""), true); code != http.StatusOK {
		t.Fatalf("/offboard through the router: HTTP %d", code)
	}
	msg0, err := h.Offboard(ctx, slack.SlashCommand{UserID: "UMGR0001", Command: accessslack.Command, Text: "<@UEMP0001|someone>"})
	if err != nil || !strings.Contains(msg0.Text, "Only the people in DPP_OFFBOARDING_REQUESTERS") {
		t.Fatalf("/offboard by a non-requester: %+v %v", msg0, err)
	}
	msg1, err := h.Offboard(ctx, slack.SlashCommand{UserID: "UDPO0001", Command: accessslack.Command, Text: "<@UEMP0001|someone>"})
	if err != nil || !strings.Contains(msg1.Text, "Started offboarding-p-1") {
		t.Fatalf("/offboard: %+v %v", msg1, err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), "offboarding-p-1", "", "test over") })
	msg2, _ := h.Offboard(ctx, slack.SlashCommand{UserID: "UDPO0001", Command: accessslack.Command, Text: "p-1"})
	if !strings.Contains(msg2.Text, "already ran or is running") {
		t.Fatalf("a second /offboard: %+v", msg2)
	}
	var off workflows.OffboardingStatus
	eventually(t, "the offboarding to finish", func() bool {
		r := c.GetWorkflow(ctx, "offboarding-p-1", "")
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return r.Get(ctx, &off) == nil
	})
	if len(off.Accounts) != 1 || off.Accounts[0].VerifiedAt == nil || off.BreachedAt != nil {
		t.Fatalf("offboarding: %+v", off)
	}
	if got := complianceDeadline(t, c, "offboarding-p-1"); !got.Equal(off.Deadline) || !off.Deadline.Equal(off.TerminatedAt.Add(24*time.Hour)) {
		t.Fatalf("offboarding ComplianceDeadline %s, its deadline %s", got, off.Deadline)
	}
	// Past its retention the sweep erases the reason: the report says when,
	// and no evidence row ever held it.
	later := &freetext.Store{Pool: pool, Vault: v, Signer: signer, Now: func() time.Time { return time.Now().AddDate(0, freetext.RetentionMonths, 1) }}
	if n, _, err := later.EraseDue(ctx, 100); err != nil || n != 1 {
		t.Fatalf("sweep: %d erased, %v", n, err)
	}
	if rep, err = access.CampaignReport(ctx, pool, campaign, v); err != nil || !strings.HasPrefix(keptRow(rep).Reason, "erased on ") {
		t.Fatalf("the report after erasure: %+v %v", keptRow(rep), err)
	}
	var dump string
	if err := pool.QueryRow(ctx, `SELECT string_agg(e::text, ' ') FROM evidence_log e`).Scan(&dump); err != nil || strings.Contains(dump, "Reasonmark") {
		t.Fatalf("the reason is in the evidence log (%v)", err)
	}
	if chain, err := evidence.Verify(ctx, pool, nil); err != nil || !chain.OK() {
		t.Fatalf("the chain after erasure: %+v %v", chain, err)
	}
	// Recorded with ComplianceDeadline and the sealed reason's ref (the runs of
	// access_review_slack.json and offboarding_slack.json had neither).
	saveHistory(t, c, wfID, "access_review_slack_deadline.json")
	saveHistory(t, c, "offboarding-p-1", "offboarding_slack_deadline.json")
}

// complianceDeadline reads a workflow's ComplianceDeadline search attribute
// from the server (zero when it has none).
func complianceDeadline(t *testing.T, c client.Client, id string) time.Time {
	t.Helper()
	desc, err := c.DescribeWorkflow(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := desc.TypedSearchAttributes.GetTime(workflows.ComplianceDeadlineKey)
	return d
}

// saveHistory saves a run's history for the replay test (workflows/testdata/codec)
// when DPP_SAVE_HISTORIES is set; a saved history is a frozen baseline, never
// overwritten.
func saveHistory(t *testing.T, c client.Client, id, file string) {
	t.Helper()
	if os.Getenv("DPP_SAVE_HISTORIES") == "" {
		return
	}
	path := filepath.Join("..", "..", "workflows", "testdata", "codec", file)
	if _, err := os.Stat(path); err == nil {
		t.Logf("history %s is a frozen baseline: not re-recorded", file)
		return
	}
	b, err := app.HistoryJSON(c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
