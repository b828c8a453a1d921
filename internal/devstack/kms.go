package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KMSOptions say how to run local-kms and which AES key to seed it with.
type KMSOptions struct {
	// Dir holds the seed file (seed.yaml), the keys local-kms keeps (data/) and its output
	// (local-kms.log). A restart reuses them, so data keys wrapped before it still decrypt.
	Dir string
	// KeyID (a UUID) and Alias ("alias/...") name the one symmetric key seeded.
	KeyID, Alias string
	// BackingKey is that key's material, 64 hex digits (default: random, for this KMS's life).
	BackingKey string
	// Description is the key's description in KMS.
	Description string
	// Region and AccountID appear in the key's ARN (default: local-kms's own).
	Region, AccountID string
	// Binary is local-kms (default: bin/local-kms of this repository).
	Binary string
}

// KMS is local-kms on a fixed loopback port with a fixed data directory: Start, Kill or Stop, and
// Start again serves the same keys at the same Endpoint.
type KMS struct {
	opts    KMSOptions
	started bool // once a start succeeded the port is this KMS's for good; guarded by startMu
	port    int  // guarded by mu
	restartable
}

// NewKMS writes the seed file, makes the data directory and picks a port; nothing runs until
// Start.
func NewKMS(opts KMSOptions) (*KMS, error) {
	if opts.Dir == "" || opts.KeyID == "" || !strings.HasPrefix(opts.Alias, "alias/") {
		return nil, errors.New("local-kms: Dir, KeyID and an Alias starting alias/ are required")
	}
	var err error
	if opts.Binary, err = binaryOr(opts.Binary, "local-kms"); err != nil {
		return nil, err
	}
	if opts.BackingKey == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // never fails on supported platforms
		opts.BackingKey = hex.EncodeToString(b)
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("local-kms: data directory: %w", err)
	}
	seed := "Keys:\n" +
		"  Symmetric:\n" +
		"    Aes:\n" +
		"      - Metadata:\n" +
		"          KeyId: " + opts.KeyID + "\n" +
		"          Description: " + opts.Description + "\n" +
		"        BackingKeys:\n" +
		"          - " + opts.BackingKey + "\n" +
		"Aliases:\n" +
		"  - AliasName: " + opts.Alias + "\n" +
		"    TargetKeyId: " + opts.KeyID + "\n"
	if err := os.WriteFile(filepath.Join(opts.Dir, "seed.yaml"), []byte(seed), 0o600); err != nil {
		return nil, fmt.Errorf("local-kms: seed file: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return &KMS{opts: opts, port: port,
		restartable: restartable{name: "local-kms", stopSignal: syscall.SIGTERM, stopGrace: 5 * time.Second}}, nil
}

// Endpoint is the base URL, e.g. http://127.0.0.1:45123 (AWS_ENDPOINT_URL_KMS).
func (k *KMS) Endpoint() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return "http://" + loopback(k.port)
}

// Start starts local-kms (again, after Kill or Stop) and returns once the seeded key answers
// DescribeKey under its alias. Until one start has succeeded a failed start is tried on two more
// ports, since another program may take a free port before local-kms binds it; afterwards the
// port never changes.
func (k *KMS) Start(ctx context.Context) error {
	k.startMu.Lock()
	defer k.startMu.Unlock()
	attempts := 1
	if !k.started {
		attempts = 3
	}
	var err error
	for i := 0; i < attempts && ctx.Err() == nil; i++ {
		if i > 0 {
			port, perr := FreePort()
			if perr != nil {
				return perr
			}
			k.mu.Lock()
			k.port = port
			k.mu.Unlock()
		}
		if err = k.tryPort(ctx); err == nil {
			k.started = true
			return nil
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func (k *KMS) tryPort(ctx context.Context) error {
	k.mu.Lock()
	port := k.port
	k.mu.Unlock()
	env := append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"KMS_DATA_PATH="+filepath.Join(k.opts.Dir, "data"),
		"KMS_SEED_PATH="+filepath.Join(k.opts.Dir, "seed.yaml"))
	if k.opts.Region != "" {
		env = append(env, "KMS_REGION="+k.opts.Region)
	}
	if k.opts.AccountID != "" {
		env = append(env, "KMS_ACCOUNT_ID="+k.opts.AccountID)
	}
	endpoint := "http://" + loopback(port)
	if err := k.launch(ctx, filepath.Join(k.opts.Dir, "local-kms.log"), env, k.opts.Binary, nil,
		30*time.Second, 50*time.Millisecond, func(ctx context.Context) error { return k.describeKey(ctx, endpoint) }); err != nil {
		return fmt.Errorf("local-kms on port %d: %w", port, err)
	}
	return nil
}

// Check makes one real KMS call: DescribeKey of the alias must name the seeded key.
func (k *KMS) Check(ctx context.Context) error { return k.describeKey(ctx, k.Endpoint()) }

func (k *KMS) describeKey(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/",
		strings.NewReader(`{"KeyId":"`+k.opts.Alias+`"}`))
	if err != nil {
		return err
	}
	// local-kms accepts any signature; the target header picks the operation.
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), k.opts.KeyID) {
		return fmt.Errorf("DescribeKey %s: %d %s", k.opts.Alias, resp.StatusCode, b)
	}
	return nil
}
