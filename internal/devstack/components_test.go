package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"go.temporal.io/sdk/client"
)

func skipInShortMode(t *testing.T, component string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test: needs %s (-short skips it; `make test` runs it)", component)
	}
}

// A killed server started again serves the same workflows and search attributes at the same
// address: what the benchmark's chaos mode relies on.
func TestTemporalRestartKeepsItsState(t *testing.T) {
	skipInShortMode(t, "the Temporal dev server")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sa := []string{"AmazonOrderId=Keyword", "PurgeDueAt=Datetime"}
	srv, err := NewTemporal(TemporalOptions{Dir: t.TempDir(), SearchAttributes: sa})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("a second Start: %v", err)
	}
	pid := srv.Pid()
	args := strings.Join(srv.Args(), " ")
	for _, want := range []string{"--sqlite-pragma journal_mode=wal", "--search-attribute AmazonOrderId=Keyword",
		"--search-attribute PurgeDueAt=Datetime", "--headless", "--port " + strings.TrimPrefix(srv.Address, "127.0.0.1:")} {
		if !strings.Contains(args, want) {
			t.Errorf("arguments %q lack %q", args, want)
		}
	}

	c, err := client.DialContext(ctx, client.Options{HostPort: srv.Address, Namespace: srv.Namespace, Logger: QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No worker: the workflow stays open, which is the state a restart must keep.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "devstack-restart", TaskQueue: "devstack-nobody"}, "Nothing")
	if err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	if srv.Pid() != 0 {
		t.Fatal("Pid after Kill")
	}
	if err := srv.Check(ctx); err == nil {
		t.Fatal("Check passed with the server killed")
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if srv.Pid() == 0 || srv.Pid() == pid {
		t.Fatalf("pid after restart %d (before %d)", srv.Pid(), pid)
	}
	desc, err := c.DescribeWorkflow(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatalf("the workflow started before the restart: %v", err)
	}
	if st := desc.Status.String(); st != "Running" {
		t.Fatalf("status after restart %s", st)
	}

	srv.Stop()
	if err := srv.Check(ctx); err == nil {
		t.Fatal("Check passed after Stop")
	}
}

func TestTemporalReportsAnEarlyExitWithItsOutput(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "temporal")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'unknown flag: --bogus' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := NewTemporal(TemporalOptions{Dir: dir, Binary: fake})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "unknown flag: --bogus") {
		t.Fatalf("Start = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the exit was noticed only at the deadline")
	}
}

// A killed local-kms started again has the same endpoint and still decrypts what it encrypted.
func TestKMSRestartKeepsItsKeys(t *testing.T) {
	skipInShortMode(t, "local-kms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k, err := NewKMS(KMSOptions{Dir: t.TempDir(), KeyID: "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", Alias: "alias/devstack-test",
		Description: "devstack test key", Region: "eu-west-2", AccountID: "111122223333"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	endpoint := k.Endpoint()
	kc := kms.New(kms.Options{Region: "eu-west-2", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})})
	dk, err := kc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/devstack-test"), KeySpec: types.DataKeySpecAes256})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(aws.ToString(dk.KeyId), "arn:aws:kms:eu-west-2:111122223333:key/6f1c2d3e-") {
		t.Errorf("key ARN %s: region or account not applied", aws.ToString(dk.KeyId))
	}

	k.Kill()
	if k.Pid() != 0 || k.Check(ctx) == nil {
		t.Fatal("local-kms still answers after Kill")
	}
	if err := k.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if k.Endpoint() != endpoint {
		t.Fatalf("endpoint moved from %s to %s", endpoint, k.Endpoint())
	}
	out, err := kc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	if err != nil {
		t.Fatalf("decrypting a data key wrapped before the restart: %v", err)
	}
	if !bytes.Equal(out.Plaintext, dk.Plaintext) {
		t.Fatal("decrypted another key")
	}

	k.Stop()
	if k.Pid() != 0 || k.Check(ctx) == nil {
		t.Fatal("local-kms still answers after Stop")
	}
}

// A killed Mailpit started again has the same addresses and still holds the messages it took;
// goaws comes back at the same address (its queues live in memory).
func TestMailpitAndGoAWSRestart(t *testing.T) {
	skipInShortMode(t, "mailpit and goaws")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := NewMailpit(MailpitOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := smtp.SendMail(m.SMTPAddr, nil, "dpp@example.invalid", []string{"dpo@example.invalid"},
		[]byte("Subject: devstack restart\r\n\r\nkept across a restart\r\n")); err != nil {
		t.Fatal(err)
	}
	count := func() string {
		t.Helper()
		resp, err := http.Get("http://" + m.HTTPAddr + "/api/v1/messages")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Total int `json:"total"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(body.Total)
	}
	if n := count(); n != "1" {
		t.Fatalf("%s messages before the restart", n)
	}
	m.Kill()
	if m.Pid() != 0 || m.Check(ctx) == nil {
		t.Fatal("mailpit still answers after Kill")
	}
	if err := m.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if n := count(); n != "1" {
		t.Fatalf("%s messages after the restart", n)
	}
	m.Stop()
	if m.Check(ctx) == nil {
		t.Fatal("mailpit still answers after Stop")
	}

	g, err := NewGoAWS(GoAWSOptions{Dir: t.TempDir(), Region: "eu-west-2", AccountID: "100010001000"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("a second Start: %v", err)
	}
	g.Kill()
	if g.Check(ctx) == nil {
		t.Fatal("goaws still answers after Kill")
	}
	if err := g.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	g.Stop()
	if g.Pid() != 0 || g.Check(ctx) == nil {
		t.Fatal("goaws still answers after Stop")
	}
}
