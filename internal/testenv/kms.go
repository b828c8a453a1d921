package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/plusranger/dpp/internal/devstack"
	"github.com/plusranger/dpp/internal/vault"
)

// Fixed identity of the test KMS key seeded into every local-kms we start.
const (
	KMSKeyID    = "8c0c5a37-4f2e-4f7e-9d5b-1c6b7e2a9d01"
	KMSKeyAlias = "alias/dpp-test"
	KMSRegion   = "eu-west-2"

	// Test-only key material for the seeded key (local-kms needs one).
	kmsBackingKey = "4f1d8a2c6b9e0d3f7a5c2e8b1d4f6a9c0e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f"
)

// Environment variables that point tests at an already running KMS (for example
// the one `make run` or a CI script started) instead of starting one per binary.
const (
	EnvKMSEndpoint = "DPP_TEST_KMS_ENDPOINT"
	EnvKMSKeyID    = "DPP_TEST_KMS_KEY_ID" // default: alias/dpp-test
)

// KMS is a running KMS emulator (or an external instance named by the environment).
type KMS struct {
	Endpoint string // base URL, e.g. http://127.0.0.1:45123
	KeyID    string // the seeded symmetric key

	srv  *devstack.KMS // nil for an external instance
	once sync.Once
}

// StartKMS starts <repo root>/bin/local-kms (through devstack, as the benchmark does) on a free
// loopback port with its data and seed file in dir, seeding one AES key (KMSKeyID, alias
// KMSKeyAlias), and returns when that key answers under its alias. Callers own the result and
// must Stop it. A missing binary is an error (run `make tools`): callers fail, they never skip.
func StartKMS(ctx context.Context, dir string) (*KMS, error) {
	srv, err := devstack.NewKMS(devstack.KMSOptions{Dir: dir, KeyID: KMSKeyID, Alias: KMSKeyAlias,
		BackingKey: kmsBackingKey, Description: "dpp test key", Region: KMSRegion})
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return &KMS{Endpoint: srv.Endpoint(), KeyID: KMSKeyID, srv: srv}, nil
}

// Client returns a KMS client for this instance (static dummy credentials,
// region eu-west-2, base endpoint overridden), the way production code builds one
// with AWS_ENDPOINT_URL_KMS set.
func (k *KMS) Client(ctx context.Context) (*kms.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(KMSRegion),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(
			func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "testenv"}, nil
			})),
	)
	if err != nil {
		return nil, fmt.Errorf("testenv: aws config: %w", err)
	}
	endpoint := k.Endpoint
	return kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(endpoint) }), nil
}

// Stop stops the emulator if this process started it and waits for it to exit.
// It is safe to call more than once and on an external instance (a no-op).
func (k *KMS) Stop() {
	if k == nil || k.srv == nil {
		return
	}
	k.once.Do(k.srv.Stop)
}

var (
	sharedKMSMu  sync.Mutex
	sharedKMS    *KMS
	sharedKMSErr error
	sharedKMSDir string // temporary directory of a started instance
)

// KMSForTest returns the KMS shared by every test in this test binary, starting
// local-kms on first use (in a temporary directory). If DPP_TEST_KMS_ENDPOINT is
// set, that running instance is used instead, with key DPP_TEST_KMS_KEY_ID
// (default alias/dpp-test). If it cannot start, the test fails; it never skips.
//
// The instance outlives single tests, so it is not stopped by t.Cleanup: call
// StopAll from TestMain after m.Run:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testenv.StopAll()
//		os.Exit(code)
//	}
//
// (StopKMS stops only this component.) On Linux the emulator also dies with the
// test binary (parent-death signal), so a binary without that TestMain, or one
// killed by a timeout, leaks no process; only its temporary directory stays.
func KMSForTest(t testing.TB) *KMS {
	skipInShortMode(t, "local-kms")
	t.Helper()
	sharedKMSMu.Lock()
	defer sharedKMSMu.Unlock()
	if sharedKMS == nil && sharedKMSErr == nil {
		sharedKMS, sharedKMSErr = startSharedKMS()
	}
	if sharedKMSErr != nil {
		t.Fatalf("testenv: KMS emulator: %v", sharedKMSErr)
	}
	return sharedKMS
}

func startSharedKMS() (*KMS, error) {
	if ep := os.Getenv(EnvKMSEndpoint); ep != "" {
		keyID := os.Getenv(EnvKMSKeyID)
		if keyID == "" {
			keyID = KMSKeyAlias
		}
		return &KMS{Endpoint: ep, KeyID: keyID}, nil
	}
	dir, err := os.MkdirTemp("", "dpp-local-kms-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := StartKMS(ctx, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	sharedKMSDir = dir
	return k, nil
}

// StopKMS stops the shared emulator of KMSForTest, if this process started one,
// and removes its directory. A later KMSForTest starts a new one.
func StopKMS() {
	sharedKMSMu.Lock()
	defer sharedKMSMu.Unlock()
	sharedKMS.Stop()
	if sharedKMSDir != "" {
		_ = os.RemoveAll(sharedKMSDir)
	}
	sharedKMS, sharedKMSErr, sharedKMSDir = nil, nil, ""
}

// StopAll stops every shared component this package started for the test binary
// (KMS, Mailpit, Temporal). Call it from TestMain after m.Run. It is safe when
// nothing was started and when called more than once.
func StopAll() {
	StopKMS()
	StopMailpit()
	StopGoAWS()
	StopTemporal()
}

// VaultForTest returns a vault over the test binary's shared local-kms
// (KMSForTest) and its key, as the worker builds one; it fails the test if
// either cannot be made.
func VaultForTest(t testing.TB) *vault.Vault {
	t.Helper()
	k := KMSForTest(t)
	client, err := k.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(client, k.KeyID)
	if err != nil {
		t.Fatalf("testenv: vault: %v", err)
	}
	return v
}
