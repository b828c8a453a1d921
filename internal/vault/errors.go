package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/aws/smithy-go"
)

// KMSError is a failed KMS call. It names the operation and the (non-PII) context
// and says whether retrying is likely to help. Err is the SDK's error.
type KMSError struct {
	Op        string // "GenerateDataKey" or "Decrypt"
	Context   Context
	Transient bool
	Err       error
}

func (e *KMSError) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	return fmt.Sprintf("vault: kms %s (order %q, purpose %q) failed, %s: %v",
		e.Op, e.Context.OrderID, e.Context.Purpose, kind, e.Err)
}

func (e *KMSError) Unwrap() error { return e.Err }

func newKMSError(op string, c Context, err error) *KMSError {
	return &KMSError{Op: op, Context: c, Transient: classifyTransient(err), Err: err}
}

// Error codes of KMS (and generic AWS) errors that a later retry may cure.
var transientCodes = map[string]bool{
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"ThrottledException":                     true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"KMSInternalException":                   true,
	"DependencyTimeoutException":             true,
	"KeyUnavailableException":                true,
	"InternalFailure":                        true,
	"InternalError":                          true,
	"ServiceUnavailable":                     true,
	"ServiceUnavailableException":            true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
}

// Error codes that retrying cannot cure: wrong context or blob, no permission,
// missing, disabled or pending-deletion keys, bad input.
var permanentCodes = map[string]bool{
	"InvalidCiphertextException":  true,
	"IncorrectKeyException":       true,
	"InvalidKeyUsageException":    true,
	"InvalidGrantTokenException":  true,
	"AccessDeniedException":       true,
	"NotFoundException":           true,
	"DisabledException":           true,
	"KMSInvalidStateException":    true,
	"ValidationException":         true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
	"DryRunOperationException":    true,
	"LimitExceededException":      true, // a resource quota, not a request rate
}

// IsTransient reports whether err (from this package, or any KMS SDK error) is
// likely to go away on retry: throttling, KMS 5xx/internal errors, timeouts and
// network failures. InvalidCiphertext, AccessDenied, NotFound, disabled keys and
// other client errors are permanent. Non-KMS errors (e.g. ErrDecrypt) are not
// transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var ke *KMSError
	if errors.As(err, &ke) {
		return ke.Transient
	}
	return classifyTransient(err)
}

func classifyTransient(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if permanentCodes[code] {
			return false
		}
		if transientCodes[code] {
			return true
		}
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		if c := status.HTTPStatusCode(); c == 429 || c >= 500 {
			return true
		}
		if c := status.HTTPStatusCode(); c >= 400 {
			return false
		}
	}
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; not a property of KMS
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var sendErr interface{ ConnectionError() bool } // smithyhttp.RequestSendError
	if errors.As(err, &sendErr) && sendErr.ConnectionError() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
