package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/workflows"
)

// checkInvariants checks what must hold after every run, chaos or not.
func (e *env) checkInvariants(ctx context.Context, ids []string, hs []*orderHistory, herrs []error, smp *sampler) []Invariant {
	var out []Invariant
	add := func(name string, checked, violations int, detail string) {
		out = append(out, Invariant{Name: name, Checked: checked, Violations: violations, Detail: detail})
	}
	fail := func(name string, err error) { add(name, 0, 1, "could not check: "+err.Error()) }
	n := len(ids)

	// 0. The leak checks can only see a leak if the sandbox marks its PII.
	marked := 0
	for _, id := range ids[:min(len(ids), 20)] {
		if o, ok := e.sb.Order(id); ok && o.Buyer != nil && strings.Contains(o.Buyer.BuyerName, marker) {
			marked++
		}
	}
	add("sandbox PII carries the marker (leak checks are meaningful)", min(len(ids), 20), min(len(ids), 20)-marked, "")

	// 1. Every order reached its expected stage: purged in the store, workflow completed.
	purgedAt := map[string]bool{}
	rows, err := e.pool.Query(ctx, `SELECT amazon_order_id, purged_at IS NOT NULL FROM orders`)
	if err == nil {
		for rows.Next() {
			var id string
			var p bool
			if rows.Scan(&id, &p) == nil {
				purgedAt[id] = p
			}
		}
		rows.Close()
	}
	if err != nil {
		fail("every order reached its expected stage (purged, workflow completed)", err)
	} else {
		bad, example := 0, ""
		for i, id := range ids {
			h := hs[i]
			ok := purgedAt[id] && h != nil && h.closed == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
			if !ok {
				bad++
				if example == "" {
					st := "no history"
					if h != nil {
						st = h.closed.String()
					}
					example = fmt.Sprintf("e.g. %s: purged=%v workflow=%s", id, purgedAt[id], st)
				}
			}
		}
		if len(herrs) > 0 && example == "" {
			example = herrs[0].Error()
		}
		add("every order reached its expected stage (purged, workflow completed)", n, bad, example)
	}

	// 2. No order workflow run failed, timed out or was terminated.
	resp, err := e.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: fmt.Sprintf(`WorkflowType = %q AND ExecutionStatus != "Completed" AND ExecutionStatus != "Running"`, workflows.OrderLifecycleName)})
	if err != nil {
		fail("no OrderLifecycle run failed, timed out or was terminated", err)
	} else {
		add("no OrderLifecycle run failed, timed out or was terminated", n, int(resp.GetCount()), "")
	}

	// 3. Exactly one invoice per order; 4. numbers gap-free.
	invoices := map[string]int{}
	var numbers []int64
	rows, err = e.pool.Query(ctx, `SELECT amazon_order_id, number FROM invoices WHERE series = 'INV'`)
	if err == nil {
		for rows.Next() {
			var id string
			var num int64
			if rows.Scan(&id, &num) == nil {
				invoices[id]++
				numbers = append(numbers, num)
			}
		}
		rows.Close()
	}
	if err != nil {
		fail("every order has exactly one invoice", err)
	} else {
		bad, example := 0, ""
		for _, id := range ids {
			if invoices[id] != 1 {
				bad++
				if example == "" {
					example = fmt.Sprintf("e.g. %s has %d", id, invoices[id])
				}
			}
		}
		if extra := len(invoices) - n; extra > 0 {
			bad += extra
			example += fmt.Sprintf(" %d invoices of unknown orders", extra)
		}
		add("every order has exactly one invoice", n, bad, strings.TrimSpace(example))
		sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
		gaps := 0
		for i, num := range numbers {
			if num != int64(i+1) {
				gaps++
			}
		}
		var last int64
		_ = e.pool.QueryRow(ctx, `SELECT last_number FROM invoice_counters WHERE series = 'INV'`).Scan(&last)
		detail := fmt.Sprintf("numbers 1..%d, counter at %d", len(numbers), last)
		if last != int64(len(numbers)) {
			gaps++
		}
		add("invoice numbers are gap-free (1..n, counter = n)", len(numbers), gaps, detail)
	}

	// 5. Wrapped PII keys and ciphertext come and go together.
	var keyNoCT, ctNoKey, purgedWithPII, liveWithoutPII int
	err = e.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM data_keys k WHERE k.purpose = 'pii' AND NOT EXISTS (SELECT 1 FROM sealed_fields f WHERE f.key_ref = k.key_ref)),
		(SELECT count(*) FROM sealed_fields f WHERE NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.key_ref = f.key_ref)),
		(SELECT count(*) FROM orders o WHERE o.purged_at IS NOT NULL AND (
			EXISTS (SELECT 1 FROM sealed_fields f WHERE f.amazon_order_id = o.amazon_order_id) OR
			EXISTS (SELECT 1 FROM data_keys k WHERE k.amazon_order_id = o.amazon_order_id AND k.purpose = 'pii'))),
		(SELECT count(*) FROM orders o WHERE o.purged_at IS NULL AND NOT (
			EXISTS (SELECT 1 FROM sealed_fields f WHERE f.amazon_order_id = o.amazon_order_id) AND
			EXISTS (SELECT 1 FROM data_keys k WHERE k.amazon_order_id = o.amazon_order_id AND k.purpose = 'pii')))`).
		Scan(&keyNoCT, &ctNoKey, &purgedWithPII, &liveWithoutPII)
	if err != nil {
		fail("no PII data key without its ciphertext, or the reverse", err)
	} else {
		add("no PII data key without its ciphertext, or the reverse", n, keyNoCT+ctNoKey+purgedWithPII+liveWithoutPII,
			fmt.Sprintf("keys without ciphertext %d, ciphertext without key %d, purged orders holding PII %d, live orders missing key or ciphertext %d",
				keyNoCT, ctNoKey, purgedWithPII, liveWithoutPII))
	}

	// 6. Tax-record keys match the invoices.
	var taxKeyNoInv, invNoKey, taxKeys int
	err = e.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM data_keys k WHERE k.purpose = 'tax-record' AND NOT EXISTS (
			SELECT 1 FROM invoices i WHERE i.key_ref = k.key_ref AND i.pdf_sealed IS NOT NULL AND i.amazon_order_id = k.amazon_order_id)),
		(SELECT count(*) FROM invoices i WHERE i.purged_at IS NULL AND NOT EXISTS (
			SELECT 1 FROM data_keys k WHERE k.key_ref = i.key_ref AND k.purpose = 'tax-record')),
		(SELECT count(*) FROM data_keys WHERE purpose = 'tax-record')`).Scan(&taxKeyNoInv, &invNoKey, &taxKeys)
	if err != nil {
		fail("tax-record keys match the invoices", err)
	} else {
		add("tax-record keys match the invoices", taxKeys, taxKeyNoInv+invNoKey,
			fmt.Sprintf("keys without invoice %d, invoices without key %d", taxKeyNoInv, invNoKey))
	}

	// 7. Every purged order has exactly one valid certificate; 8. the chain verifies.
	keys, err := evidence.PublicKeys(ctx, e.pool)
	if err != nil {
		fail("every purged order has exactly one valid certificate", err)
	} else {
		checked, bad, example := 0, 0, ""
		note := func(s string) {
			bad++
			if example == "" {
				example = s
			}
		}
		for _, id := range ids {
			if !purgedAt[id] {
				continue
			}
			checked++
			recs, err := evidence.Get(ctx, e.pool, id, evidence.KindCertificate)
			if err != nil {
				note(err.Error())
				continue
			}
			if len(recs) != 1 || recs[0].IdempotencyKey != orders.PurgeIdempotencyKey(id) {
				note(fmt.Sprintf("%s has %d certificates", id, len(recs)))
				continue
			}
			r := recs[0]
			prev := evidence.GenesisHash
			if r.Seq > 1 {
				p, err := evidence.BySeq(ctx, e.pool, r.Seq-1)
				if err != nil {
					note(err.Error())
					continue
				}
				prev = p.Hash
			}
			if err := evidence.VerifyRecord(r, keys[r.SigningKeyID], prev); err != nil {
				note(fmt.Sprintf("%s: %v", id, err))
			}
		}
		add("every purged order has exactly one valid certificate", checked, bad, example)
	}
	rep, err := evidence.Verify(ctx, e.pool, nil)
	if err != nil {
		fail("the evidence chain verifies", err)
	} else {
		detail := fmt.Sprintf("%d records, head at %d", rep.Records, rep.HeadSeq)
		v := 0
		if !rep.OK() {
			v, detail = 1, rep.FirstBroken.Error()
		}
		add("the evidence chain verifies", rep.Records, v, detail)
	}

	// 9. No marker PII in histories (every event, protobuf wire form).
	hits, example, checked := 0, "", 0
	for _, h := range hs {
		if h == nil {
			continue
		}
		checked++
		if h.piiHits > 0 {
			hits++
			if example == "" {
				example = h.id + ": " + h.piiExcerpt
			}
		}
	}
	e.syncMu.Lock()
	runs := append([]syncRun(nil), e.syncRuns...)
	e.syncMu.Unlock()
	for _, r := range runs {
		if r.runID == "" {
			continue
		}
		h, err := analyse(ctx, e.tc, r.id, r.runID, markerForms(marker))
		if err != nil {
			continue
		}
		checked++
		if h.piiHits > 0 {
			hits++
			if example == "" {
				example = "OrderSync " + r.runID + ": " + h.piiExcerpt
			}
		}
	}
	add("no marker PII in workflow histories (OrderLifecycle + OrderSync, all events)", checked, hits, example)

	// 10. No marker PII in the worker's logs (every incarnation).
	logHits, logBytes, example := 0, 0, ""
	for _, path := range e.workers.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		logBytes += len(b)
		n, ex := findMarkers(b, markerForms(marker))
		logHits += n
		if ex != "" && example == "" {
			example = path + ": " + ex
		}
	}
	add(fmt.Sprintf("no marker PII in worker logs (%d files, %d KiB)", len(e.workers.logs), logBytes>>10), len(e.workers.logs), logHits, example)

	// 11. No marker PII in the database outside ciphertext: dumps taken while
	// sealed, and one now.
	smp.dump(ctx)
	smp.mu.Lock()
	dumps, dHits, dEx, dErr := smp.dumps, smp.dumpHits, smp.dumpExcerpt, smp.dumpErr
	smp.mu.Unlock()
	if dErr != nil && dumps == 0 {
		fail("no marker PII in the database outside ciphertext (pg_dump)", dErr)
	} else {
		add(fmt.Sprintf("no marker PII in the database outside ciphertext (%d pg_dumps, peak %d live)", dumps, smp.peakDB().LiveOrders), dumps, dHits, dEx)
	}
	return out
}
