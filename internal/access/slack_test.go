package access_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/plusranger/dpp/internal/access"
)

func TestReviewMessage(t *testing.T) {
	lines := []access.ReviewLine{
		{Item: access.Item{ID: "1", PersonID: "p-1", System: "postgres", Account: "emp_<one>", Reviewer: "p-mgr", AmazonData: true}},
		{Item: access.Item{ID: "2", System: "seller-central", Account: "admin", Flags: []string{access.FlagUnmapped, access.FlagShared}, Reviewer: "p-mgr"}},
		{Item: access.Item{ID: "3", PersonID: "p-2", System: "postgres", Account: "svc", Service: true, Reviewer: "p-mgr"}, Decision: access.DecisionRevoke, By: "p-mgr"},
	}
	text, blocks := access.ReviewMessage("2026-Q4", lines)
	if text != "Access review 2026-Q4: 3 account(s) to review, 2 open" {
		t.Fatalf("fallback text %q", text)
	}
	b, _ := json.Marshal(blocks)
	js := string(b)
	for _, want := range []string{
		`"action_id":"access-review:keep","value":"2026-Q4|1"`,
		`"action_id":"access-review:revoke"`, `"value":"2026-Q4|2"`,
		`mapped to nobody`, `Keeping it needs a written reason.`, `unmapped, shared`,
		`revoked by p-mgr`, `emp_\u0026lt;one\u0026gt;`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("blocks lack %s:\n%s", want, js)
		}
	}
	// A decided item has no buttons left.
	if strings.Contains(js, `"2026-Q4|3"`) {
		t.Error("a decided item still has buttons")
	}
	if c, i, err := access.ParseItemValue("2026-Q4|12"); err != nil || c != "2026-Q4" || i != "12" {
		t.Fatalf("ParseItemValue: %q %q %v", c, i, err)
	}
	if _, _, err := access.ParseItemValue("nonsense"); err == nil {
		t.Fatal("ParseItemValue accepted a value without an item")
	}
}
