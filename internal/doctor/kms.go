package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/vault"
)

// Check names of the KMS group.
const (
	CheckKMSKey    = "kms key"
	CheckKMSUse    = "kms data keys"
	CheckKMSPolicy = "kms key policy"
)

func checkKMS(ctx context.Context, cfg *config.Config, _ Options) []Result {
	c, err := vault.NewKMSClient(ctx, cfg.AWSRegion, cfg.KMSEndpoint)
	if err != nil {
		return []Result{fail(CheckKMSKey, "no KMS client: "+oneLine(err), "set AWS_REGION and the AWS credentials (or AWS_ENDPOINT_URL_KMS for local-kms)")}
	}
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(cfg.KMSKeyID)})
	if err != nil {
		return []Result{fail(CheckKMSKey, "DescribeKey "+cfg.KMSKeyID+": "+oneLine(err),
			"DPP_KMS_KEY_ID must name a key (id, ARN or alias/...) this role may use: grant kms:DescribeKey, kms:GenerateDataKey and kms:Decrypt on it")}
	}
	m := d.KeyMetadata
	var out []Result
	found := fmt.Sprintf("%s: state %s, usage %s, spec %s", aws.ToString(m.Arn), m.KeyState, m.KeyUsage, m.KeySpec)
	switch {
	case m.KeyState != types.KeyStateEnabled:
		return append(out, fail(CheckKMSKey, found, "the key must be Enabled: cancel its deletion (kms cancel-key-deletion) or enable it, or point DPP_KMS_KEY_ID at an enabled key"))
	case m.KeyUsage != types.KeyUsageTypeEncryptDecrypt || m.KeySpec != types.KeySpecSymmetricDefault:
		return append(out, fail(CheckKMSKey, found, "data keys need a symmetric ENCRYPT_DECRYPT key (SYMMETRIC_DEFAULT, AES-256-GCM in KMS): create one and set DPP_KMS_KEY_ID"))
	}
	out = append(out, ok(CheckKMSKey, found))

	// A throwaway data key under a context naming no order: the same calls sealing makes.
	ec := map[string]string{vault.ContextKeyOrderID: "doctor", vault.ContextKeyPurpose: "doctor"}
	gk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: m.Arn, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
	if err != nil {
		return append(out, fail(CheckKMSUse, "GenerateDataKey: "+oneLine(err), "grant this role kms:GenerateDataKey on the key"))
	}
	pt, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gk.CiphertextBlob, EncryptionContext: ec, KeyId: m.Arn})
	if err != nil {
		return append(out, fail(CheckKMSUse, "Decrypt: "+oneLine(err), "grant this role kms:Decrypt on the key"))
	}
	if !bytes.Equal(pt.Plaintext, gk.Plaintext) || len(gk.Plaintext) != 32 {
		return append(out, fail(CheckKMSUse, "Decrypt returned another key", "KMS is not behaving: check AWS_ENDPOINT_URL_KMS"))
	}
	clear(pt.Plaintext)
	clear(gk.Plaintext)
	wrong := map[string]string{vault.ContextKeyOrderID: "doctor-other", vault.ContextKeyPurpose: "doctor"}
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gk.CiphertextBlob, EncryptionContext: wrong, KeyId: m.Arn}); err == nil {
		return append(out, fail(CheckKMSUse, "Decrypt accepted the wrong encryption context", "KMS does not bind data keys to their order: use AWS KMS"))
	}
	out = append(out, ok(CheckKMSUse, "AES-256 data key generated and unwrapped; a wrong encryption context is refused"))
	return append(out, checkKeyPolicy(ctx, c, m))
}

// checkKeyPolicy looks at the basics: no statement lets anyone ("*") use the key
// without a condition, and automatic rotation of the key material.
func checkKeyPolicy(ctx context.Context, c *kms.Client, m *types.KeyMetadata) Result {
	p, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: m.KeyId, PolicyName: aws.String("default")})
	if err != nil {
		return warn(CheckKMSPolicy, "cannot read the key policy: "+oneLine(err),
			"grant kms:GetKeyPolicy to the role running the doctor, or review the policy by hand: only the worker's role may use the key")
	}
	text := aws.ToString(p.Policy)
	if text == "" {
		// local-kms keeps no policies; AWS always has one.
		return warn(CheckKMSPolicy, "KMS returned an empty key policy (local-kms keeps none): nothing to check",
			"on AWS, the doctor checks that no statement opens the key to everyone")
	}
	n, open, err := openStatement(text)
	if err != nil {
		return warn(CheckKMSPolicy, "the key policy is not JSON the doctor reads", "review it by hand: only the worker's role may use the key")
	}
	if open > 0 {
		return fail(CheckKMSPolicy, fmt.Sprintf("statement %d allows any principal (\"*\") without a condition", open),
			"restrict the key policy to the account root and the worker's role (deploy/ lists the actions it needs)")
	}
	found := fmt.Sprintf("%d statements, none open to everyone", n)
	rot, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: m.KeyId})
	switch {
	case err != nil:
		found += "; rotation status unreadable (" + oneLine(err) + ")"
	case !rot.KeyRotationEnabled:
		found += "; automatic rotation of the key material off (key epochs rotate the wrapping key instead)"
	default:
		found += "; automatic rotation on"
	}
	return ok(CheckKMSPolicy, found)
}

// openStatement parses a key policy and returns its number of statements and
// the first (1-based) that allows any principal without a condition, or 0.
func openStatement(policy string) (n, open int, err error) {
	var doc struct {
		Statement []struct {
			Effect    string
			Principal any
			Condition map[string]any
		}
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return 0, 0, err
	}
	for i, s := range doc.Statement {
		if s.Effect == "Allow" && anyone(s.Principal) && len(s.Condition) == 0 {
			return len(doc.Statement), i + 1, nil
		}
	}
	return len(doc.Statement), 0, nil
}

func anyone(p any) bool {
	switch v := p.(type) {
	case string:
		return v == "*"
	case map[string]any:
		for _, x := range v {
			if anyone(x) {
				return true
			}
			if l, ok := x.([]any); ok {
				for _, y := range l {
					if anyone(y) {
						return true
					}
				}
			}
		}
	}
	return false
}
