package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/plusranger/dpp/internal/vault"
)

// keyDescriber is the KMS call the allow-list resolves aliases and key ids with
// (the AWS client has it; vault.KMS does not require it).
type keyDescriber interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// allowList is the set of KMS keys the codec may ask to Decrypt. Payloads name
// their key by ARN (what KMS returns from GenerateDataKey), while the
// configuration may name keys by id, ARN, alias name or alias ARN: key ARNs are
// taken as they are, everything else is resolved to its key's ARN with
// DescribeKey, once. Without DescribeKey (a KMS client that lacks it), a bare
// key id matches any ARN ending in ":key/<id>" and an alias matches only the
// ARN GenerateDataKey returned for it.
type allowList struct {
	mu      sync.Mutex
	arns    map[string]bool
	bareIDs map[string]bool
	pending []string // configured ids still to resolve
	// After a permanent failure (no such key, no permission) resolution is not
	// tried again before retryAt; lastErr is returned meanwhile.
	retryAt time.Time
	lastErr error
}

// permanentRetry is how long a permanent DescribeKey failure is remembered, so
// payloads naming unknown keys cannot make the codec call KMS at will.
const permanentRetry = time.Minute

func newAllowList(ids []string) *allowList {
	a := &allowList{arns: map[string]bool{}, bareIDs: map[string]bool{}}
	seen := map[string]bool{}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if isKeyARN(id) {
			a.arns[id] = true
		} else {
			a.pending = append(a.pending, id)
		}
	}
	return a
}

// isKeyARN reports whether id is the ARN of a key (not of an alias).
func isKeyARN(id string) bool {
	return strings.HasPrefix(id, "arn:") && strings.Contains(id, ":key/")
}

// learn adds the ARN KMS returned for the encoding key.
func (a *allowList) learn(arn string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.arns[arn] = true
}

func (a *allowList) has(keyID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.arns[keyID] {
		return true
	}
	if i := strings.LastIndex(keyID, ":key/"); i >= 0 && isKeyARN(keyID) {
		return a.bareIDs[keyID[i+len(":key/"):]]
	}
	return false
}

// resolve turns the pending ids into ARNs; ids KMS cannot resolve stay pending
// and the first failure is returned. After a transient failure the next call
// tries again; after a permanent one (no such key or alias, no permission) only
// a call a minute later does, or a strict one (Warm, at start).
func (a *allowList) resolve(ctx context.Context, client vault.KMS, strict bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) == 0 {
		return nil
	}
	if !strict && a.lastErr != nil && time.Now().Before(a.retryAt) {
		return a.lastErr
	}
	d, ok := client.(keyDescriber)
	if !ok {
		for _, id := range a.pending {
			if !strings.HasPrefix(id, "alias/") && !strings.HasPrefix(id, "arn:") {
				a.bareIDs[id] = true
			}
		}
		a.pending = nil
		return nil
	}
	var left []string
	var firstErr error
	permanent := false
	for _, id := range a.pending {
		out, err := d.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if err == nil && (out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.Arn) == "") {
			err = errors.New("no ARN in the answer")
		}
		if err != nil {
			left = append(left, id)
			permanent = permanent || !vault.IsTransient(err)
			if firstErr == nil {
				firstErr = fmt.Errorf("codec: cannot resolve the allowed decoding key %s: %w", id, kmsError("DescribeKey", id, err))
			}
			continue
		}
		a.arns[aws.ToString(out.KeyMetadata.Arn)] = true
	}
	a.pending, a.lastErr = left, nil
	if permanent {
		a.lastErr, a.retryAt = firstErr, time.Now().Add(permanentRetry)
	}
	return firstErr
}
