package workflows

import (
	"encoding/json"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/schemas"
)

// TestJSONSchemasMatchTheDecoders keeps schemas/json honest: every example in a
// schema is accepted by the workflow's own decoder, and the schema lists exactly
// the fields the decoder knows.
func TestJSONSchemasMatchTheDecoders(t *testing.T) {
	decoders := map[string]func(raw []byte) error{
		"order-lifecycle.input": func(raw []byte) error { var v OrderInput; json.Unmarshal(raw, &v); return v.Validate() },
		"signal.delivered":      func(raw []byte) error { return decodeSignal(raw, &DeliveredSignal{}) },
		"signal.legal-hold":     func(raw []byte) error { return decodeCodedSignal(raw, &HoldSignal{}) },
		"signal.release-hold":   func(raw []byte) error { return decodeCodedSignal(raw, &ReleaseSignal{}) },
		"signal.purge-now":      func(raw []byte) error { return decodeCodedSignal(raw, &PurgeNowSignal{}) },
		"signal.cancelled":      func(raw []byte) error { return decodeCodedSignal(raw, &CancelledSignal{}) },
	}
	fields := map[string][]string{
		"order-lifecycle.input": {"amazonOrderId"}, "signal.delivered": {"deliveredAt"},
		"signal.legal-hold": {"by", "note", "reason"}, "signal.release-hold": {"by", "note"},
		"signal.purge-now": {"by", "note", "reason"}, "signal.cancelled": {"reason"},
		"order-sync.input": {"name"}, "tax-record-sweep.input": {"batchSize"},
		"retention-audit.input": {"afterDueAt", "afterId", "asOf", "batchSize", "found", "maxBatches", "purged", "running", "runningIds"},
	}
	files, _ := fs.Glob(schemas.JSONSchemas, "json/*.schema.json")
	if len(files) != len(fields) {
		t.Fatalf("want %d schemas, found %v", len(fields), files)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "json/"), ".schema.json")
		b, _ := fs.ReadFile(schemas.JSONSchemas, f)
		var s struct {
			Properties map[string]any    `json:"properties"`
			Examples   []json.RawMessage `json:"examples"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		if strings.Join(props, ",") != strings.Join(fields[name], ",") {
			t.Errorf("%s: properties %v, decoder knows %v", name, props, fields[name])
		}
		if decode := decoders[name]; decode != nil {
			for _, ex := range s.Examples {
				if err := decode(ex); err != nil {
					t.Errorf("%s: example %s rejected: %v", name, ex, err)
				}
			}
		}
	}
}

func decodeCodedSignal(raw []byte, s codedSignal) error {
	if err := decodeSignal(raw, s); err != nil {
		return err
	}
	return s.CheckCodes()
}

// TestSchemaCodeListsMatchTheWorkflow: the enums operators read are the lists
// the workflow enforces.
func TestSchemaCodeListsMatchTheWorkflow(t *testing.T) {
	for file, want := range map[string][]string{
		"json/signal.legal-hold.schema.json": HoldReasons, "json/signal.purge-now.schema.json": PurgeNowReasons,
		"json/signal.cancelled.schema.json": CancelReasons,
	} {
		b, _ := fs.ReadFile(schemas.JSONSchemas, file)
		var s struct {
			Properties struct {
				Reason struct {
					Enum []string `json:"enum"`
				} `json:"reason"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if strings.Join(s.Properties.Reason.Enum, ",") != strings.Join(want, ",") {
			t.Errorf("%s: reason enum %v, the workflow accepts %v", file, s.Properties.Reason.Enum, want)
		}
	}
}

func TestOrderSyncCancelsWithACode(t *testing.T) {
	if !slices.Contains(CancelReasons, activities.CancelReasonOnAmazon) || CancelOnAmazon != activities.CancelReasonOnAmazon {
		t.Fatalf("OrderSync's cancellation reason %q is not the workflow's code %q", activities.CancelReasonOnAmazon, CancelOnAmazon)
	}
}
