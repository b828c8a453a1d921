package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

const (
	doctorSecret  = "lwa-secret-DO-NOT-PRINT"
	doctorRefresh = "Atzr|refresh-DO-NOT-PRINT"
	doctorMarker  = "PIIMARK"
)

// TestDoctor runs `starter doctor` against the sandbox, local-kms, PostgreSQL and
// the Temporal dev server: first on a namespace nobody has set up, then after
// `starter setup`, then once per broken setting, each failure named with its fix.
func TestDoctor(t *testing.T) {
	kms := testenv.KMSForTest(t)
	temporal := testenv.TemporalForTest(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test") // goaws takes any
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	goaws := testenv.GoAWSForTest(t)
	sq, queueURL := orderChangeQueue(t, goaws)
	sb, url := sandboxtest.Start(t, sandbox.Options{Seed: 11, Limits: sandbox.TestLimits(), Marker: doctorMarker, SQS: sq,
		Credentials: &sandbox.Credentials{ClientID: "amzn1.application-oa2-client.doctor", ClientSecret: doctorSecret, RefreshToken: doctorRefresh}})
	ids := sb.Generate(2)
	dsn := testenv.Database(t)

	// A namespace of its own, with neither search attributes nor schedules yet.
	ns := "doctor-" + testenv.TaskQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: temporal.Address, Namespace: temporal.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: ns,
		WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}

	env := map[string]string{
		"DATABASE_URL": testenv.AsRole(t, dsn, store.WorkerRole), "TEMPORAL_CONFIG_FILE": os.DevNull,
		"TEMPORAL_ADDRESS": temporal.Address, "TEMPORAL_NAMESPACE": ns, "DPP_TASK_QUEUE": testenv.TaskQueue(t),
		"AWS_ENDPOINT_URL_KMS": kms.Endpoint, "DPP_KMS_KEY_ID": kms.KeyID, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"DPP_SELLER_NAME": "Plusranger Ltd", "DPP_SELLER_ADDRESS": "1 High St|Leeds", "DPP_SELLER_VAT_NUMBER": "GB123456789",
		"SPAPI_ENDPOINT": url, "LWA_TOKEN_URL": sandboxtest.TokenURL(url),
		"LWA_CLIENT_ID": "amzn1.application-oa2-client.doctor", "LWA_CLIENT_SECRET": doctorSecret, "LWA_REFRESH_TOKEN": doctorRefresh,
	}
	with := func(changes map[string]string) map[string]string {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range changes {
			e[k] = v
		}
		return e
	}
	doctor := func(t *testing.T, e map[string]string, wantExit int, wants ...string) string {
		t.Helper()
		out, code := starter(t, e, "doctor", "-timeout", "15s")
		if code != wantExit {
			t.Fatalf("doctor: exit %d, want %d\n%s", code, wantExit, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("doctor's report lacks %q", w)
			}
		}
		for _, secret := range []string{doctorSecret, doctorRefresh, doctorMarker} {
			if strings.Contains(out, secret) {
				t.Errorf("doctor's report shows %q", secret)
			}
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("report:\n%s", out)
		}
		return out
	}

	t.Run("namespace not set up", func(t *testing.T) {
		doctor(t, env, 1,
			"[ok  ] lwa credentials: the refresh token gives an access token valid 1h0m0s",
			"[ok  ] pii roles (getOrder): getOrder", "buyer name present, delivery address present",
			"[ok  ] kms key:", "[ok  ] kms data keys: AES-256 data key generated and unwrapped; a wrong encryption context is refused",
			"[ok  ] database: connected as dpp_worker; schema current",
			"[ok  ] database grants: 9 least-privilege grants",
			"[ok  ] temporal: connected to "+temporal.Address+", namespace "+ns,
			"[FAIL] search attributes: AmazonOrderId missing", "fix: run `starter setup` (it registers them)",
			"[FAIL] schedules: order-sync missing", "fix: run `starter setup`: it creates or updates every schedule",
			"[warn] sp-api endpoint: "+url+" is a local sandbox over plain HTTP")
	})
	if out, code := starter(t, env, "setup", "-wait", "60s"); code != 0 {
		t.Fatalf("setup: exit %d\n%s", code, out)
	}
	t.Run("set up", func(t *testing.T) {
		doctor(t, env, 0, fmt.Sprintf("[ok  ] search attributes: all %d present with their types", len(workflows.SearchAttributes)),
			fmt.Sprintf("[ok  ] schedules: all %d present and running", len(workflows.Schedules)),
			"checks: 0 failed, 2 warnings", "[warn] kms key policy: KMS returned an empty key policy (local-kms keeps none)")
	})
	t.Run("notifications", func(t *testing.T) {
		nenv := with(map[string]string{"AWS_ENDPOINT_URL_SQS": goaws.Endpoint(), "DPP_ORDER_CHANGE_QUEUE_URL": queueURL})
		doctor(t, nenv, 1, "[ok  ] order-change queue: arn:aws:sqs:", "[FAIL] order-change subscription: no destination for arn:aws:sqs:",
			"fix: run `starter notifications setup` (it creates only what is missing)",
			"[FAIL] order-notifications workflow: no workflow order-notifications: nothing consumes the queue")
		out, code := starter(t, nenv, "notifications", "setup")
		if code != 0 {
			t.Fatalf("notifications setup: exit %d\n%s", code, out)
		}
		defer func() {
			c, err := client.DialContext(ctx, client.Options{HostPort: temporal.Address, Namespace: ns})
			if err == nil {
				_ = c.TerminateWorkflow(ctx, workflows.OrderNotificationsWorkflowID, "", "test over")
				c.Close()
			}
		}()
		doctor(t, nenv, 0, "[ok  ] order-change subscription: subscription sub-", "(payload 1.0) delivers to destination dest-",
			"[ok  ] order-notifications workflow: order-notifications running (run ",
			"[ok  ] missed by notifications: 0 orders in the last 7 days")

		// Notifications began ten minutes ago; an order sealed since has none of its own: the sweep found it.
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `INSERT INTO order_notifications (notification_id, amazon_order_id, order_status, changed_at, received_at)
			VALUES ('n-doctor-1', '026-1000000-0000001', 'Unshipped', now() - interval '10 minutes', now() - interval '10 minutes')`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO orders (amazon_order_id, marketplace_id, purchased_at, is_business, currency, facts, sealed_at)
			VALUES ('026-1000000-0000002', 'A1F83G8C2ARO7P', now() - interval '5 minutes', false, 'GBP', '{}', now() - interval '5 minutes')`); err != nil {
			t.Fatal(err)
		}
		doctor(t, nenv, 0, "[warn] missed by notifications: 1 orders in the last 7 days were found by OrderSync's sweep without a notification (newest: 026-1000000-0000002)",
			"fix: Amazon did not deliver them to the queue")
	})
	t.Run("wrong client secret", func(t *testing.T) {
		doctor(t, with(map[string]string{"LWA_CLIENT_SECRET": "expired-secret"}), 1,
			"[FAIL] lwa credentials: LWA refused the client (HTTP 401 invalid_client)", "the secret expired (LWA secrets expire 180 days")
	})
	t.Run("revoked refresh token", func(t *testing.T) {
		doctor(t, with(map[string]string{"LWA_REFRESH_TOKEN": "Atzr|revoked"}), 1,
			"[FAIL] lwa credentials: LWA refused the refresh token (HTTP 400 invalid_grant)", "have the seller authorise the application again")
	})
	t.Run("no restricted role", func(t *testing.T) {
		if err := sb.WithholdRestrictedData(ids[0]); err != nil {
			t.Fatal(err)
		}
		out, code := starter(t, env, "doctor", "-order", ids[0])
		if code != 1 || !strings.Contains(out, "[FAIL] pii roles (getOrder): getOrder "+ids[0]) ||
			!strings.Contains(out, "buyer name ABSENT, delivery address ABSENT") ||
			!strings.Contains(out, "Direct-to-Consumer Shipping") || !strings.Contains(out, "Tax Invoicing") || strings.Contains(out, doctorMarker) {
			t.Fatalf("doctor -order (withheld): exit %d\n%s", code, out)
		}
	})
	t.Run("unknown KMS key", func(t *testing.T) {
		doctor(t, with(map[string]string{"DPP_KMS_KEY_ID": "alias/dpp-does-not-exist"}), 1,
			"[FAIL] kms key: DescribeKey alias/dpp-does-not-exist", "grant kms:DescribeKey, kms:GenerateDataKey and kms:Decrypt")
	})
	t.Run("superuser database role", func(t *testing.T) {
		doctor(t, with(map[string]string{"DATABASE_URL": dsn}), 1, "a superuser: it could switch the evidence log's triggers off")
	})
	t.Run("grant removed", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `GRANT UPDATE ON evidence_log TO dpp_worker`); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(ctx, `REVOKE UPDATE ON evidence_log FROM dpp_worker`)
		doctor(t, env, 1, "[FAIL] database grants: dpp_worker has UPDATE on evidence_log (evidence is append-only)")
	})
	t.Run("Temporal unreachable", func(t *testing.T) {
		doctor(t, with(map[string]string{"TEMPORAL_ADDRESS": testenv.FreeAddr(t)}), 1, "[FAIL] temporal: cannot connect to", "start Temporal or correct TEMPORAL_ADDRESS")
	})
	t.Run("bad setting", func(t *testing.T) {
		doctor(t, with(map[string]string{"LWA_REFRESH_TOKEN": ""}), 1, "[FAIL] settings:", "LWA_REFRESH_TOKEN")
	})
}

// orderChangeQueue creates a goaws queue of the test's own for ORDER_CHANGE
// notifications and returns the SQS client the sandbox sends with.
func orderChangeQueue(t *testing.T, g *testenv.GoAWS) (*sqs.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := notifications.NewSQSClient(ctx, g.Region, g.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("doctor-" + testenv.TaskQueue(t))})
	if err != nil {
		t.Fatal(err)
	}
	return c, aws.ToString(q.QueueUrl)
}
