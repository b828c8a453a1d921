package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

// piiValues lists every piece of buyer PII of an order by the name the sealed
// store gives its field, as internal/orders/pii.go does (the test checks the two
// agree against the sealed_fields rows).
func piiValues(o *spapi.Order) map[string]string {
	f := map[string]string{}
	put := func(name, v string) {
		if v != "" {
			f[name] = v
		}
	}
	address := func(p string, a *spapi.CustomerAddress) {
		put(p+"name", a.Name)
		put(p+"companyName", a.CompanyName)
		put(p+"addressLine1", a.AddressLine1)
		put(p+"addressLine2", a.AddressLine2)
		put(p+"addressLine3", a.AddressLine3)
		put(p+"city", a.City)
		put(p+"districtOrCounty", a.DistrictOrCounty)
		put(p+"stateOrRegion", a.StateOrRegion)
		put(p+"municipality", a.Municipality)
		put(p+"postalCode", a.PostalCode)
		put(p+"countryCode", a.CountryCode)
		put(p+"phone", a.Phone)
		put(p+"addressType", a.AddressType)
		if e := a.ExtendedFields; e != nil {
			put(p+"streetName", e.StreetName)
			put(p+"streetNumber", e.StreetNumber)
			put(p+"complement", e.Complement)
			put(p+"neighborhood", e.Neighborhood)
		}
	}
	if b := o.Buyer; b != nil {
		put("buyer.name", b.BuyerName)
		put("buyer.email", b.BuyerEmail)
		put("buyer.companyName", b.BuyerCompanyName)
		put("buyer.purchaseOrderNumber", b.BuyerPurchaseOrderNumber)
	}
	if r := o.Recipient; r != nil && r.DeliveryAddress != nil {
		address("recipient.", r.DeliveryAddress)
	}
	if t := o.Tax; t != nil {
		for i, reg := range t.TaxRegistrations {
			p := fmt.Sprintf("tax.%d.", i)
			put(p+"entityType", reg.EntityType)
			put(p+"legalName", reg.LegalName)
			put(p+"type", reg.TaxRegistrationType)
			put(p+"number", reg.TaxRegistrationNumber)
			if reg.TaxRegistrationAddress != nil {
				address(p+"address.", reg.TaxRegistrationAddress)
			}
		}
	}
	for i, it := range o.OrderItems {
		if it.Fulfillment != nil && it.Fulfillment.Packing != nil && it.Fulfillment.Packing.GiftOption != nil {
			put(fmt.Sprintf("items[%d].giftMessage", i), it.Fulfillment.Packing.GiftOption.GiftMessage)
		}
	}
	return f
}

// genericPIIField matches the PII fields whose values are not personal on their
// own and appear legitimately elsewhere (the seller is in Leeds too, every order
// is "GB"): city, county, country, address type, tax entity and registration
// type. The sandbox does not mark them. Every other field is searched for.
var genericPIIField = regexp.MustCompile(`\.(city|districtOrCounty|stateOrRegion|countryCode|addressType|entityType|type)$`)

// needle is one form of one PII value to search for.
type needle struct{ field, form string }

// piiNeedles returns the forms in which an order's PII could leak: each
// distinctive value as the sandbox made it, with the marker stripped (a marker
// is easy to lose, the value is what leaks), and JSON-escaped.
func piiNeedles(t *testing.T, fields map[string]string) []needle {
	t.Helper()
	var ns []needle
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if genericPIIField.MatchString(name) {
			continue
		}
		v := fields[name]
		seen := map[string]bool{}
		for _, form := range []string{v, strings.ReplaceAll(v, " "+marker, ""), strings.ReplaceAll(v, marker, "")} {
			form = strings.TrimSpace(form)
			for _, f := range []string{form, mustJSONString(t, form)} {
				if len(f) < 6 {
					t.Fatalf("PII field %s has a value too short to search for without false hits: %q", name, f)
				}
				if !seen[f] {
					seen[f] = true
					ns = append(ns, needle{name, f})
				}
			}
		}
	}
	return append(ns, needle{"marker", marker})
}

// piiHits returns the PII fields any of whose forms occur in b.
func piiHits(b []byte, ns []needle) []string {
	var hits []string
	seen := map[string]bool{}
	for _, n := range ns {
		if !seen[n.field] && bytes.Contains(b, []byte(n.form)) {
			seen[n.field] = true
			hits = append(hits, n.field)
		}
	}
	return hits
}

// decodeAll decodes, in place, every payload nested anywhere in m through the
// stack's codec (inputs, results, signals, memos, search attributes, headers,
// failures' encoded attributes) and returns how many were encrypted.
func (s *stack) decodeAll(m protoreflect.Message) int {
	s.t.Helper()
	var ps []*commonpb.Payload
	walk(m, func(m protoreflect.Message) {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			ps = append(ps, p)
		}
	})
	encrypted := 0
	for _, p := range ps {
		if !codec.IsEncrypted(p) {
			continue
		}
		encrypted++
		dec, err := s.app.Codec.Decode([]*commonpb.Payload{p})
		s.must(err, "decode a payload")
		if codec.IsEncrypted(dec[0]) {
			s.t.Fatal("a payload decoded to an encrypted payload")
		}
		proto.Reset(p)
		proto.Merge(p, dec[0])
	}
	return encrypted
}

// decodedWire returns events with every payload decoded, in protobuf wire form:
// decoded payload data, failure messages, IDs and every other string appear in it
// verbatim. It fails if nothing was encrypted (the scan would then prove nothing
// about decoding) or if anything is left encrypted.
func (s *stack) decodedWire(evs []*historypb.HistoryEvent) []byte {
	s.t.Helper()
	var all []byte
	encrypted := 0
	for _, ev := range evs {
		ev = proto.Clone(ev).(*historypb.HistoryEvent)
		encrypted += s.decodeAll(ev.ProtoReflect())
		b, err := proto.Marshal(ev)
		s.must(err, "marshal event")
		all = append(all, b...)
	}
	if encrypted == 0 {
		s.t.Fatal("no payload was encrypted: the decoded scan proves nothing about decoding")
	}
	return all
}

func wire(t *testing.T, evs []*historypb.HistoryEvent) []byte {
	t.Helper()
	var all []byte
	for _, ev := range evs {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// waitFor polls the status query until ok holds.
func (s *stack) waitFor(ctx context.Context, orderID, what string, ok func(workflows.OrderStatus) bool) {
	s.t.Helper()
	for {
		v, err := s.app.Temporal.QueryWorkflow(ctx, workflows.OrderWorkflowID(orderID), "", workflows.QueryStatus)
		if err == nil {
			var st workflows.OrderStatus
			if v.Get(&st) == nil && ok(st) {
				return
			}
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("order %s: never saw %s", orderID, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leakOrder is an order of the leak test with the PII the sandbox gave it.
type leakOrder struct {
	id, kind string
	fields   map[string]string
	needles  []needle
}

func TestNoBuyerPIIInDecodedHistoriesQueriesOrLogs(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()

	// One business order (a full invoice: the invoice step decrypts the PII) and one
	// consumer order under the simplified-invoice limit.
	var full, simplified *leakOrder
	for full == nil || simplified == nil {
		id := s.sandbox.Generate(1)[0]
		o, _ := s.sandbox.Order(id)
		total, err := o.Proceeds.GrandTotal.Amount.Minor()
		s.must(err, "total")
		lo := &leakOrder{id: id, fields: piiValues(&o)}
		lo.needles = piiNeedles(t, lo.fields)
		switch {
		case o.IsBusiness() && full == nil:
			lo.kind, full = "full", lo
		case !o.IsBusiness() && total <= 25000 && simplified == nil:
			lo.kind, simplified = "simplified", lo
		}
	}
	orders := []*leakOrder{full, simplified}
	canary := fmt.Sprintf("operator-note-canary-%d", time.Now().UnixNano())

	for _, o := range orders {
		s.startOrder(ctx, o.id)
		// The list of PII values is the sealed store's: every sealed field, no other.
		var sealed []string
		rows, err := s.app.Pool.Query(ctx, `SELECT field FROM sealed_fields WHERE amazon_order_id = $1 ORDER BY field`, o.id)
		s.must(err, "sealed fields")
		for rows.Next() {
			var f string
			s.must(rows.Scan(&f), "scan")
			sealed = append(sealed, f)
		}
		s.must(rows.Err(), "sealed fields")
		var mine []string
		for f := range o.fields {
			mine = append(mine, f)
		}
		sort.Strings(mine)
		if strings.Join(sealed, ",") != strings.Join(mine, ",") {
			t.Fatalf("%s order: the test's PII fields %v differ from the sealed ones %v: update piiValues", o.kind, mine, sealed)
		}
		if st := s.status(ctx, o.id); st.InvoiceNumber == "" {
			t.Fatalf("%s order not invoiced: %+v", o.kind, st)
		}
	}
	// An operator's note travels in a signal (sealed with the order's PII): the
	// decoded scan must find it, or it finds nothing.
	wid := workflows.OrderWorkflowID(simplified.id)
	s.must(s.app.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalLegalHold,
		map[string]string{"reason": "dispute", "by": "dpo", "note": canary}), "hold")
	s.waitFor(ctx, simplified.id, "the legal hold", func(st workflows.OrderStatus) bool { return st.OnHold })
	s.must(s.app.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalReleaseHold, map[string]string{"by": "dpo"}), "release")
	for _, o := range orders {
		s.must(s.app.Temporal.SignalWorkflow(ctx, workflows.OrderWorkflowID(o.id), "", workflows.SignalDelivered,
			map[string]string{"deliveredAt": time.Now().UTC().Format(time.RFC3339)}), "delivered")
	}

	for _, o := range orders {
		wid := workflows.OrderWorkflowID(o.id)
		// The workflow's result, decoded.
		var result json.RawMessage
		s.must(s.app.Temporal.GetWorkflow(ctx, wid, "").Get(ctx, &result), "result of %s", o.id)
		var res workflows.OrderResult
		s.must(json.Unmarshal(result, &res), "result")
		if res.PurgeReason != workflows.PurgeReasonRetention || res.CertificateSeq == 0 {
			t.Fatalf("%s order: result %s", o.kind, result)
		}
		// The status query's answer, decoded.
		v, err := s.app.Temporal.QueryWorkflow(ctx, wid, "", workflows.QueryStatus)
		s.must(err, "query")
		var status json.RawMessage
		s.must(v.Get(&status), "status")
		// Memo and search attributes as the Web UI lists them, decoded.
		described, err := s.app.Temporal.DescribeWorkflow(ctx, wid, "")
		s.must(err, "describe")
		desc := proto.Clone(described.RawResponse).(*workflowservice.DescribeWorkflowExecutionResponse)
		s.decodeAll(desc.ProtoReflect())
		descWire, err := proto.Marshal(desc)
		s.must(err, "marshal describe")

		evs := s.events(ctx, wid)
		decoded := s.decodedWire(evs)
		for where, b := range map[string][]byte{
			"decoded history": decoded, "workflow result": result, "status query": status, "describe (memo, search attributes)": descWire,
		} {
			if hits := piiHits(b, o.needles); len(hits) > 0 {
				t.Errorf("%s order %s: buyer PII %v in the %s", o.kind, o.id, hits, where)
			}
		}
		if !bytes.Contains(decoded, []byte(o.id)) || !bytes.Contains(status, []byte(`"stage":"`+workflows.StagePurged+`"`)) {
			t.Fatalf("%s order: the decoded history or status lacks the order itself: the scan saw nothing", o.kind)
		}
		if o == simplified {
			// The canary is in the decoded history and in no stored byte: decoding
			// works, and the scanner finds what is there.
			withCanary := append(append([]needle(nil), o.needles...), needle{"canary", canary})
			if hits := piiHits(decoded, withCanary); len(hits) != 1 || hits[0] != "canary" {
				t.Fatalf("decoded history: scanner reported %v, want exactly the operator's note [canary]", hits)
			}
			if hits := piiHits(wire(t, evs), withCanary); len(hits) != 0 {
				t.Fatalf("stored history: %v in plaintext", hits)
			}
		}
	}

	// A failing order: SP-API answers with a malformed order, the activity fails
	// and the workflow with it. The decoded failures name what was wrong, never the
	// buyer (the corrupt value itself carries the marker, so the marker is not
	// searched for here).
	badID := s.sandbox.Generate(1)[0]
	bad, _ := s.sandbox.Order(badID)
	var badNeedles []needle
	for _, n := range piiNeedles(t, piiValues(&bad)) {
		if n.field != "marker" {
			badNeedles = append(badNeedles, n)
		}
	}
	s.must(s.sandbox.CorruptOrder(badID, sandbox.CorruptBadTime), "corrupt")
	_, err := s.app.StartOrder(ctx, badID)
	s.must(err, "start %s", badID)
	var appErr *temporal.ApplicationError
	badErr := s.app.Temporal.GetWorkflow(ctx, workflows.OrderWorkflowID(badID), "").Get(ctx, nil)
	if !errors.As(badErr, &appErr) || appErr.Type() != activities.ErrInvalidOrder {
		t.Fatalf("malformed order: want an InvalidOrder failure, got %v", badErr)
	}
	badEvents := s.events(ctx, workflows.OrderWorkflowID(badID))
	if _, fs := payloadsAndFailures(badEvents); len(fs) == 0 {
		t.Fatal("the failed order's history holds no failure: the scan of failures proves nothing")
	}
	decodedBad := s.decodedWire(badEvents)
	if msg := appErr.Message(); msg == "" || !bytes.Contains(decodedBad, []byte(mustJSONString(t, msg))) {
		t.Fatalf("the decoded history lacks the failure's message %q: failures were not decoded", msg)
	}
	if hits := piiHits(decodedBad, badNeedles); len(hits) > 0 {
		t.Errorf("malformed order %s: buyer PII %v in the decoded history (failures)", badID, hits)
	}
	if hits := piiHits([]byte(badErr.Error()), badNeedles); len(hits) > 0 {
		t.Errorf("malformed order %s: buyer PII %v in the error the client sees", badID, hits)
	}

	// The scanner reports a buyer's name carried by a payload the codec encrypted,
	// as it would if a workflow put one in a signal, input or result.
	t.Run("scanner finds PII in an encrypted payload", func(t *testing.T) {
		dc := s.app.Codec.DataConverter()
		name := full.fields["buyer.name"]
		for _, value := range []string{name, strings.ReplaceAll(name, " "+marker, "")} {
			p, err := dc.ToPayload(map[string]string{"buyerName": value})
			s.must(err, "encode")
			ev := &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{
				WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{
					SignalName: "leak", Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{p}}}}}
			if hits := piiHits(wire(t, []*historypb.HistoryEvent{ev}), full.needles); len(hits) != 0 {
				t.Fatalf("the payload was not encrypted: %v", hits)
			}
			if hits := piiHits(s.decodedWire([]*historypb.HistoryEvent{ev}), full.needles); !slices.Contains(hits, "buyer.name") {
				t.Fatalf("scanner reported %v for a decoded payload carrying %q", hits, value)
			}
		}
	})

	// Logs: nothing of either order's PII, though they tell of both orders.
	logs := []byte(s.logs.String())
	if hits := piiHits(logs, badNeedles); len(hits) > 0 {
		t.Errorf("malformed order: buyer PII %v in the logs", hits)
	}
	for _, o := range orders {
		if hits := piiHits(logs, o.needles); len(hits) > 0 {
			t.Errorf("%s order: buyer PII %v in the logs", o.kind, hits)
		}
		if !bytes.Contains(logs, []byte(o.id)) {
			t.Fatalf("the log capture saw nothing of the %s order: the leak check on logs proves nothing", o.kind)
		}
	}

	// Stored invoices, read back as text (fpdf compresses its content streams, so
	// the raw bytes would hide anything). The tax record outlives the PII purge.
	for _, o := range orders {
		pdf, inv, err := s.app.Orders.ExportInvoice(ctx, o.id, "tester", "audit")
		s.must(err, "export invoice of %s", o.id)
		if string(inv.Kind) != o.kind {
			t.Fatalf("order %s: a %s invoice, want %s", o.id, inv.Kind, o.kind)
		}
		text := []byte(pdfText(t, pdf))
		if !bytes.Contains(text, []byte(inv.Number)) {
			t.Fatalf("%s invoice text lacks its number %s: the text extraction failed:\n%s", o.kind, inv.Number, text)
		}
		hits := piiHits(text, o.needles)
		switch o.kind {
		case "simplified":
			if len(hits) > 0 {
				t.Errorf("simplified invoice of %s carries buyer PII %v:\n%s", o.id, hits, text)
			}
		case "full":
			// The same check reports the buyer on a full invoice: it can fail.
			if !slices.Contains(hits, "tax.0.legalName") || !slices.Contains(hits, "tax.0.address.addressLine1") {
				t.Errorf("full invoice of %s: scanner reported %v, want the buyer's legal name and address:\n%s", o.id, hits, text)
			}
		}
	}
}
