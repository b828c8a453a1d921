package activities

import (
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/internal/spapi"
)

// Only what no retry can fix is final; a 403 may be a credential being rotated.
func TestUploadErrorsFinalOnlyWhenRetryingCannotHelp(t *testing.T) {
	for err, wantFinal := range map[error]bool{
		&spapi.Error{Operation: spapi.OpCreateFeed, StatusCode: 400, Code: "InvalidInput"}:     true,
		&spapi.Error{Operation: spapi.OpGetFeed, StatusCode: 404}:                              true,
		&spapi.ResponseError{Operation: spapi.OpGetFeed, Problem: "feedId: missing"}:           true,
		fmt.Errorf("spapi createFeed: %w: FeedType is required", spapi.ErrInvalidParams):       true,
		&spapi.Error{Operation: spapi.OpCreateFeed, StatusCode: 403, Code: "Unauthorized"}:     false,
		&spapi.Error{Operation: spapi.OpCreateFeed, StatusCode: 429}:                           false,
		&spapi.Error{Operation: spapi.OpCreateFeed, StatusCode: 503}:                           false,
		&spapi.TransportError{Operation: spapi.OpUploadFeedDocument, Err: errors.New("reset")}: false,
	} {
		var appErr *temporal.ApplicationError
		got := errors.As(uploadError(err), &appErr) && appErr.NonRetryable()
		if got != wantFinal {
			t.Errorf("%v: final %v, want %v", err, got, wantFinal)
		}
	}
}
