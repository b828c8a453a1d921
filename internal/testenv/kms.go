package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
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

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string        // path of the process's combined output
	once sync.Once
}

// StartKMS starts <repo root>/bin/local-kms on a free loopback port with its data
// and seed file in dir, seeding one AES key (KMSKeyID, alias KMSKeyAlias), and
// returns when it answers ListKeys. Callers own the result and must Stop it.
// A missing binary is an error (run `make tools`): callers fail, they never skip.
func StartKMS(ctx context.Context, dir string) (*KMS, error) {
	bin, err := kmsBinary()
	if err != nil {
		return nil, err
	}
	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, []byte(kmsSeed()), 0o600); err != nil {
		return nil, fmt.Errorf("testenv: write local-kms seed: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("testenv: local-kms data dir: %w", err)
	}

	// Picking a free port and then starting the process races with other programs
	// taking the port, so try a few ports before giving up.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if ctx.Err() != nil {
			break
		}
		port, err := kmsFreePort()
		if err != nil {
			return nil, err
		}
		k, err := launchKMS(ctx, bin, dir, seed, data, port)
		if err == nil {
			return k, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, lastErr
}

func launchKMS(ctx context.Context, bin, dir, seed, data string, port int) (*KMS, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("local-kms-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("testenv: local-kms log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"KMS_DATA_PATH="+data,
		"KMS_SEED_PATH="+seed,
		"KMS_REGION="+KMSRegion,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", bin, err)
	}
	k := &KMS{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port),
		KeyID:    KMSKeyID,
		cmd:      cmd,
		done:     make(chan struct{}),
		log:      logPath,
	}
	go func() { _ = cmd.Wait(); close(k.done) }()

	if err := k.waitReady(ctx, 30*time.Second); err != nil {
		k.Stop()
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("testenv: local-kms on port %d not ready: %w; its output:\n%s", port, err, kmsLogTail(out, 2000))
	}
	return k, nil
}

// waitReady polls ListKeys until it succeeds, the process exits, or the deadline.
func (k *KMS) waitReady(ctx context.Context, max time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	client, err := k.Client(ctx)
	if err != nil {
		return err
	}
	noRetry := func(o *kms.Options) { o.RetryMaxAttempts = 1 }
	delay := 10 * time.Millisecond
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListKeys(callCtx, &kms.ListKeysInput{}, noRetry)
		callCancel()
		if err == nil {
			return nil
		}
		select {
		case <-k.done:
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
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

// Stop kills the emulator if this process started it and waits for it to exit.
// It is safe to call more than once and on an external instance (a no-op).
func (k *KMS) Stop() {
	if k == nil || k.cmd == nil {
		return
	}
	k.once.Do(func() {
		_ = k.cmd.Process.Kill()
		select {
		case <-k.done:
		case <-time.After(10 * time.Second):
		}
	})
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
	StopTemporal()
}

func kmsSeed() string {
	return "Keys:\n" +
		"  Symmetric:\n" +
		"    Aes:\n" +
		"      - Metadata:\n" +
		"          KeyId: " + KMSKeyID + "\n" +
		"          Description: dpp test key\n" +
		"        BackingKeys:\n" +
		"          - " + kmsBackingKey + "\n" +
		"Aliases:\n" +
		"  - AliasName: " + KMSKeyAlias + "\n" +
		"    TargetKeyId: " + KMSKeyID + "\n"
}

// kmsBinary returns <repo root>/bin/local-kms, or an error telling how to get it.
func kmsBinary() (string, error) {
	root, err := kmsModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "local-kms")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("testenv: %s not found (%v): run `make tools` in %s to install it", bin, err, root)
	}
	return bin, nil
}

// kmsModuleRoot walks up from the working directory to the directory with go.mod.
func kmsModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

func kmsFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// setParentDeathSignal asks Linux to SIGKILL the child when this process dies, so
// emulators never outlive a crashed or timed-out test binary. The field exists
// only on Linux; reflection keeps this file portable.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig")
	if f.IsValid() && f.CanSet() && f.Kind() == reflect.Int {
		f.SetInt(int64(syscall.SIGKILL))
	}
}

func kmsLogTail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
