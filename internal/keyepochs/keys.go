package keyepochs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"

	"github.com/plusranger/dpp/internal/evidence"
)

// KMS is the part of the AWS KMS client key epochs use; *kms.Client implements
// it. It is an interface so a unit test can play the key-deletion states that
// local-kms does not keep (it never deletes a key whose window has not passed,
// and a window is at least 7 days).
type KMS interface {
	CreateKey(ctx context.Context, in *kms.CreateKeyInput, optFns ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	CreateAlias(ctx context.Context, in *kms.CreateAliasInput, optFns ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, optFns ...func(*kms.Options)) (*kms.ReEncryptOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, optFns ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

// Service creates, retires and certifies epoch keys.
type Service struct {
	KMS     KMS
	Pool    *pgxpool.Pool
	Signer  *evidence.Signer
	Timings Timings
	// AliasPrefix starts every alias; empty means DefaultAliasPrefix. Tests give
	// each test its own, so tests sharing one local-kms never share a key.
	AliasPrefix string
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]string // alias -> ARN of keys known to be in key_epochs
	// creating lets one caller per alias look the key up or create it: the
	// first seals of a new epoch arrive together (a worker starting, a burst of
	// orders), and each would otherwise create a KMS key, all but one of which
	// lose the alias and are scheduled for deletion.
	creating singleflight.Group
}

// ErrEpochClosed: the epoch key was retired while a data key was being wrapped
// by it. Retrying takes the current epoch's key.
var ErrEpochClosed = errors.New("key epoch closed: its key no longer wraps new data keys")

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) prefix() string {
	if s.AliasPrefix != "" {
		return s.AliasPrefix
	}
	return DefaultAliasPrefix
}

// PIIKey is the ARN of the key of the PII epoch that contains at, created if
// it does not exist yet (KeyEpochs creates each a day ahead; a worker that
// finds it missing creates it rather than fall back on a key that never dies).
func (s *Service) PIIKey(ctx context.Context, at time.Time) (string, error) {
	start := s.Timings.Start(at)
	return s.ensure(ctx, PurposePII, s.Timings.PIIAlias(s.prefix(), start), start, start.Add(s.Timings.Epoch),
		start.Add(s.Timings.Lifetime))
}

// TaxKey is the ARN of the key of the tax records of at's calendar year (UTC),
// created if needed. Tax retention counts from the invoice's issue, so a year's
// records all expire within a year of each other.
func (s *Service) TaxKey(ctx context.Context, at time.Time) (string, error) {
	y := at.UTC().Year()
	start := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(1, 0, 0)
	return s.ensure(ctx, PurposeTaxRecord, TaxAlias(s.prefix(), y), start, end, end)
}

// EnsureAhead creates the keys of the current and the next PII epoch and of
// the current and next instant's tax year, so sealing never waits for KMS
// CreateKey. It returns their aliases.
func (s *Service) EnsureAhead(ctx context.Context) ([]string, error) {
	now := s.now()
	var aliases []string
	for _, at := range []time.Time{now, now.Add(s.Timings.Epoch)} {
		if _, err := s.PIIKey(ctx, at); err != nil {
			return aliases, err
		}
		aliases = append(aliases, s.Timings.PIIAlias(s.prefix(), s.Timings.Start(at)))
	}
	for _, at := range []time.Time{now, now.Add(s.Timings.Epoch)} {
		if _, err := s.TaxKey(ctx, at); err != nil {
			return aliases, err
		}
		if a := TaxAlias(s.prefix(), at.UTC().Year()); aliases[len(aliases)-1] != a {
			aliases = append(aliases, a)
		}
	}
	return aliases, nil
}

func (s *Service) cached(alias string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	arn, ok := s.cache[alias]
	return arn, ok
}

func (s *Service) remember(alias, arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]string{}
	}
	s.cache[alias] = arn
}

// forget drops a key from the cache (it was retired).
func (s *Service) forget(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, k := range s.cache {
		if k == arn {
			delete(s.cache, a)
		}
	}
}

// ensure returns the ARN of the epoch key with this alias: from key_epochs, else
// from KMS (another database's worker, or an earlier attempt, made it), else a
// new key. The key_epochs row exists before any data key is wrapped by it, so
// no epoch escapes retirement.
func (s *Service) ensure(ctx context.Context, purpose, alias string, start, end, retire time.Time) (string, error) {
	if arn, ok := s.cached(alias); ok {
		return arn, nil
	}
	arn, err, _ := s.creating.Do(alias, func() (any, error) {
		return s.lookUpOrCreate(ctx, purpose, alias, start, end, retire)
	})
	if err != nil {
		return "", err
	}
	return arn.(string), nil
}

func (s *Service) lookUpOrCreate(ctx context.Context, purpose, alias string, start, end, retire time.Time) (string, error) {
	var arn string
	err := s.Pool.QueryRow(ctx, `SELECT kms_key_id FROM key_epochs WHERE alias = $1`, alias).Scan(&arn)
	if err == nil {
		s.remember(alias, arn)
		return arn, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("key epoch %s: %w", alias, err)
	}
	if arn, err = s.kmsKeyFor(ctx, purpose, alias); err != nil {
		return "", err
	}
	if _, err := s.Pool.Exec(ctx, `INSERT INTO key_epochs (kms_key_id, alias, purpose, starts_at, ends_at, retire_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, arn, alias, purpose, start, end, retire); err != nil {
		return "", fmt.Errorf("key epoch %s: record: %w", alias, err)
	}
	if err := s.Pool.QueryRow(ctx, `SELECT kms_key_id FROM key_epochs WHERE alias = $1`, alias).Scan(&arn); err != nil {
		return "", fmt.Errorf("key epoch %s: %w", alias, err)
	}
	s.remember(alias, arn)
	return arn, nil
}

// kmsKeyFor finds the key the alias names, or creates a key and the alias. Two
// workers may race: the alias goes to one key, and the loser schedules its own
// key, which wraps nothing, for deletion.
func (s *Service) kmsKeyFor(ctx context.Context, purpose, alias string) (string, error) {
	if arn, err := s.describeAlias(ctx, alias); err == nil || !isCode(err, "NotFoundException") {
		return arn, err
	}
	created, err := s.KMS.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("dpp " + purpose + " key epoch " + alias),
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
		Tags: []types.Tag{{TagKey: aws.String("dpp:purpose"), TagValue: aws.String(purpose)},
			{TagKey: aws.String("dpp:alias"), TagValue: aws.String(alias)}},
	})
	if err != nil {
		return "", fmt.Errorf("key epoch %s: KMS CreateKey: %w", alias, err)
	}
	arn := aws.ToString(created.KeyMetadata.Arn)
	if _, err := s.KMS.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(arn)}); err != nil {
		if !isCode(err, "AlreadyExistsException") {
			return "", fmt.Errorf("key epoch %s: KMS CreateAlias: %w", alias, err)
		}
		_, _ = s.KMS.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)})
		return s.describeAlias(ctx, alias)
	}
	return arn, nil
}

func (s *Service) describeAlias(ctx context.Context, alias string) (string, error) {
	out, err := s.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err != nil {
		return "", fmt.Errorf("key epoch %s: KMS DescribeKey: %w", alias, err)
	}
	if st := out.KeyMetadata.KeyState; st != types.KeyStateEnabled {
		return "", fmt.Errorf("key epoch %s: its KMS key %s is %s, not Enabled", alias, aws.ToString(out.KeyMetadata.Arn), st)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// isCode reports whether err is an AWS API error with this code.
func isCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}

// Join records, inside the transaction that stores a data key wrapped by
// kmsKeyID, that the order's data key is wrapped by that epoch key. It holds a
// share lock on the epoch until the transaction ends, so retirement (which
// takes the row for update) never misses a data key; an epoch already retiring
// is ErrEpochClosed. A key that is no epoch key (the configured one) joins
// nothing.
func (s *Service) Join(ctx context.Context, tx pgx.Tx, kmsKeyID, orderID, purpose, how string) error {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM key_epochs WHERE kms_key_id = $1 FOR SHARE`, kmsKeyID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("key epoch of %s: %w", orderID, err)
	}
	if state != StateActive {
		s.forget(kmsKeyID)
		return fmt.Errorf("%s key of %s: %w", purpose, orderID, ErrEpochClosed)
	}
	_, err = tx.Exec(ctx, `INSERT INTO key_epoch_members (kms_key_id, amazon_order_id, purpose, how)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, kmsKeyID, orderID, purpose, how)
	return err
}
