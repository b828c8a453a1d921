package access

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/vault"
)

// ReportRow is one item of a campaign report, rebuilt from the evidence log alone.
type ReportRow struct {
	ItemID   string   `json:"itemId"`
	System   string   `json:"system"`
	Account  string   `json:"account"`
	PersonID string   `json:"personId,omitempty"`
	Reviewer string   `json:"reviewer"`
	Flags    []string `json:"flags,omitempty"`
	Service  bool     `json:"service,omitempty"`
	Decision string   `json:"decision"`
	By       string   `json:"by"`
	// Reason is the written reason while it exists, "erased on <date>" after
	// its retention, or "sealed until <date>" to a reader without the key.
	Reason string `json:"reason,omitempty"`
	// ReasonRef names the sealed reason (internal/freetext); entries written
	// before reasons were sealed have the text in the log and no ref.
	ReasonRef   string     `json:"reasonRef,omitempty"`
	DecidedAt   time.Time  `json:"decidedAt"`
	ExecutedAt  *time.Time `json:"executedAt,omitempty"`
	VerifiedAt  *time.Time `json:"verifiedAt,omitempty"`
	ConfirmedBy string     `json:"confirmedBy,omitempty"`
	// Evidence lists the sequence numbers of the entries this row comes from.
	Evidence []int64 `json:"evidence"`
}

// ReportEvent is an escalation or extension in a campaign.
type ReportEvent struct {
	Seq        int64           `json:"seq"`
	Kind       string          `json:"kind"`
	RecordedAt time.Time       `json:"recordedAt"`
	Body       json.RawMessage `json:"body"`
}

// Report is a campaign's report: every decision and what was done about it.
type Report struct {
	Campaign   string        `json:"campaign"`
	WorkflowID string        `json:"workflowId"`
	Items      []ReportRow   `json:"items"`
	Events     []ReportEvent `json:"events"`
	Kept       int           `json:"kept"`
	Revoked    int           `json:"revoked"`
	Verified   int           `json:"verified"`
	// Unverified counts revocations with no verified execution in the evidence.
	Unverified int `json:"unverified"`
}

// CampaignReport rebuilds a campaign's report from the evidence log: the
// decision and execution entries of workflow access-review-<campaign>. Written
// reasons are opened with v; with v nil (the auditor's role) the report says
// only whether each still exists.
func CampaignReport(ctx context.Context, q evidence.Querier, campaign string, v *vault.Vault) (Report, error) {
	wfID := "access-review-" + campaign
	recs, err := evidence.Get(ctx, q, wfID, "")
	if err != nil {
		return Report{}, err
	}
	rep := Report{Campaign: campaign, WorkflowID: wfID, Items: []ReportRow{}, Events: []ReportEvent{}}
	rows := map[string]*ReportRow{}
	var order []string
	for _, r := range recs {
		switch r.Kind {
		case KindDecision:
			var b struct {
				ItemID, System, Account, PersonID, Reviewer, Decision, By, Reason, ReasonRef string
				Flags                                                                        []string
				Service                                                                      bool
				DecidedAt                                                                    time.Time
			}
			if err := json.Unmarshal(r.Body, &b); err != nil {
				return Report{}, fmt.Errorf("evidence seq %d: %w", r.Seq, err)
			}
			if b.ReasonRef != "" {
				sh, err := freetext.Read(ctx, q, v, b.ReasonRef)
				if err != nil {
					return Report{}, fmt.Errorf("evidence seq %d: reason: %w", r.Seq, err)
				}
				b.Reason = sh.String()
			}
			if _, ok := rows[b.ItemID]; !ok {
				order = append(order, b.ItemID)
				rows[b.ItemID] = &ReportRow{}
			}
			row := rows[b.ItemID]
			*row = ReportRow{ItemID: b.ItemID, System: b.System, Account: b.Account, PersonID: b.PersonID, Reviewer: b.Reviewer,
				Flags: b.Flags, Service: b.Service, Decision: b.Decision, By: b.By, Reason: b.Reason, ReasonRef: b.ReasonRef, DecidedAt: b.DecidedAt,
				ExecutedAt: row.ExecutedAt, VerifiedAt: row.VerifiedAt, ConfirmedBy: row.ConfirmedBy, Evidence: append(row.Evidence, r.Seq)}
		case KindExecution:
			var b struct {
				Step, ConfirmedBy      string
				ExecutedAt, VerifiedAt time.Time
			}
			if err := json.Unmarshal(r.Body, &b); err != nil {
				return Report{}, fmt.Errorf("evidence seq %d: %w", r.Seq, err)
			}
			id := strings.TrimPrefix(b.Step, "item/")
			if _, ok := rows[id]; !ok {
				order = append(order, id)
				rows[id] = &ReportRow{ItemID: id}
			}
			row := rows[id]
			row.ExecutedAt, row.VerifiedAt, row.ConfirmedBy = &b.ExecutedAt, &b.VerifiedAt, b.ConfirmedBy
			row.Evidence = append(row.Evidence, r.Seq)
		default:
			rep.Events = append(rep.Events, ReportEvent{Seq: r.Seq, Kind: r.Kind, RecordedAt: r.RecordedAt, Body: r.Body})
		}
	}
	slices.SortStableFunc(order, func(a, b string) int {
		ai, aerr := strconv.Atoi(a)
		bi, berr := strconv.Atoi(b)
		if aerr == nil && berr == nil {
			return ai - bi
		}
		return strings.Compare(a, b)
	})
	for _, id := range order {
		row := rows[id]
		rep.Items = append(rep.Items, *row)
		switch row.Decision {
		case DecisionKeep:
			rep.Kept++
		case DecisionRevoke:
			rep.Revoked++
			if row.VerifiedAt != nil {
				rep.Verified++
			} else {
				rep.Unverified++
			}
		}
	}
	return rep, nil
}

// ReportColumns are the CSV report's columns.
var ReportColumns = []string{"item_id", "system", "account", "person_id", "reviewer", "flags", "service", "decision", "by",
	"reason", "decided_at", "executed_at", "verified_at", "confirmed_by", "evidence_seqs"}

// WriteCSV writes the report's items as CSV.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ReportColumns); err != nil {
		return err
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, it := range r.Items {
		seqs := make([]string, len(it.Evidence))
		for i, s := range it.Evidence {
			seqs[i] = strconv.FormatInt(s, 10)
		}
		decided := it.DecidedAt
		if err := cw.Write([]string{it.ItemID, it.System, it.Account, it.PersonID, it.Reviewer, strings.Join(it.Flags, " "),
			strconv.FormatBool(it.Service), it.Decision, it.By, it.Reason, ts(&decided), ts(it.ExecutedAt), ts(it.VerifiedAt),
			it.ConfirmedBy, strings.Join(seqs, " ")}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
