// Package auditpack builds the auditor's pack: for a period, one section per
// clause of the data protection policy saying what enforces it (workflows,
// schedules and settings, read from the names tables the code itself uses) and
// the evidence the period holds, from the database and the evidence chain alone.
// It reads what dpp_auditor may read: no ciphertext, no keys, no Temporal.
//
// Nothing in a pack is personal data: the evidence log and the tables it reads
// hold ids, codes, counts and times only.
package auditpack

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/workflows"
)

// PolicyName is the policy the pack's clauses come from.
const PolicyName = "Plusranger Data Protection Policy (updated 1 January 2025)"

// Enforcement levels of a clause.
const (
	Enforced    = "enforced"
	Partly      = "partly enforced"
	NotEnforced = "not enforced by this system"
)

// Pack is report.json.
type Pack struct {
	Policy       string       `json:"policy"`
	From         time.Time    `json:"from"`
	To           time.Time    `json:"to"` // exclusive
	GeneratedAt  time.Time    `json:"generatedAt"`
	Verification Verification `json:"verification"`
	// EntriesByKind counts the period's evidence entries.
	EntriesByKind map[string]int `json:"entriesByKind"`
	Clauses       []Clause       `json:"clauses"`
}

// Verification is verification.json: the whole chain checked with the pinned
// keys, and where the period's entries sit in it.
type Verification struct {
	OK          bool     `json:"ok"`
	Entries     int      `json:"entriesVerified"`
	Head        string   `json:"head"` // SEQ:HASH, as `starter evidence head` prints it
	FirstBroken string   `json:"firstBroken,omitempty"`
	PinnedKeys  []string `json:"pinnedKeys"`
	// The period's entries: seq FirstSeq to LastSeq (none: both 0), and the hash
	// the first one links to, so evidence.jsonl can be checked on its own.
	PeriodEntries  int    `json:"periodEntries"`
	FirstSeq       int64  `json:"firstSeq"`
	LastSeq        int64  `json:"lastSeq"`
	PrevHash       string `json:"prevHash,omitempty"`
	HashEncoding   string `json:"hashEncoding"`
	SignatureCheck string `json:"signatureCheck"`
}

// Clause is one section of the pack.
type Clause struct {
	ID          string    `json:"id"`
	Policy      string    `json:"policy"` // the clause's number and heading in the policy
	Requirement string    `json:"requirement"`
	Status      string    `json:"status"` // Enforced, Partly or NotEnforced
	EnforcedBy  []Control `json:"enforcedBy"`
	Counts      []Count   `json:"counts"`
	Items       []Item    `json:"items"`
	// Problems are overdue or failed items, each named by id.
	Problems []Item   `json:"problems"`
	Notes    []string `json:"notes"`
}

// Control is something that enforces a clause.
type Control struct {
	Type   string `json:"type"` // workflow, schedule, setting, database, evidence, duty
	Name   string `json:"name"`
	Detail string `json:"detail"`
}

// Count is a named number for the period.
type Count struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

// Item is a piece of evidence (or a problem) named by id.
type Item struct {
	ID     string    `json:"id"`
	What   string    `json:"what"`
	At     time.Time `json:"at,omitzero"`
	Seq    int64     `json:"seq,omitempty"` // its evidence entry, when it has one
	Detail string    `json:"detail,omitempty"`
}

// Options say which period to build and what to trust.
type Options struct {
	From, To time.Time // [From, To)
	Keys     map[string]ed25519.PublicKey
	Heads    []evidence.Head
	Now      time.Time
}

// Querier is what the pack reads through: a read-only pool or transaction.
type Querier = evidence.Querier

// Build verifies the chain with opts.Keys and assembles the pack and the
// period's raw entries. A broken chain is reported in the pack, not as an error:
// the pack is the evidence of it.
func Build(ctx context.Context, q Querier, opts Options) (*Pack, []evidence.Record, error) {
	if opts.Keys == nil {
		return nil, nil, errors.New("no pinned keys: set DPP_EVIDENCE_KEYS")
	}
	if !opts.To.After(opts.From) {
		return nil, nil, fmt.Errorf("--to (%s) must be after --from (%s)", opts.To.Format(time.DateOnly), opts.From.Format(time.DateOnly))
	}
	rep, err := evidence.VerifyWith(ctx, q, evidence.VerifyOptions{Keys: opts.Keys, Heads: opts.Heads})
	if err != nil {
		return nil, nil, err
	}
	recs, err := evidence.Between(ctx, q, opts.From, opts.To)
	if err != nil {
		return nil, nil, err
	}
	p := &Pack{Policy: PolicyName, From: opts.From.UTC(), To: opts.To.UTC(), GeneratedAt: opts.Now.UTC(),
		EntriesByKind: map[string]int{}}
	p.Verification = Verification{OK: rep.OK(), Entries: rep.Records, Head: rep.Head.String(), PeriodEntries: len(recs),
		HashEncoding:   "SHA-256 over length-prefixed fields: dpp-evidence-v1, seq (8 bytes big-endian), kind, subject, idempotencyKey, recordedAt (RFC 3339 nanoseconds UTC), body (exact bytes), prevHash",
		SignatureCheck: "Ed25519 signature of the hash, by the pinned key named signingKeyId"}
	if !rep.OK() {
		p.Verification.FirstBroken = rep.FirstBroken.Error()
	}
	for id := range opts.Keys {
		p.Verification.PinnedKeys = append(p.Verification.PinnedKeys, id)
	}
	slices.Sort(p.Verification.PinnedKeys)
	if len(recs) > 0 {
		p.Verification.FirstSeq, p.Verification.LastSeq = recs[0].Seq, recs[len(recs)-1].Seq
		p.Verification.PrevHash = fmt.Sprintf("%x", recs[0].PrevHash)
	}
	byKind := map[string][]evidence.Record{}
	for _, r := range recs {
		p.EntriesByKind[r.Kind]++
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	b := &builder{ctx: ctx, q: q, from: opts.From, to: opts.To, byKind: byKind, recs: recs, pack: p}
	for _, section := range sections {
		c, err := section(b)
		if err != nil {
			return nil, nil, fmt.Errorf("audit pack: %s: %w", c.ID, err)
		}
		for _, l := range [][]Item{c.Items, c.Problems} {
			sort.SliceStable(l, func(i, j int) bool { return l[i].At.Before(l[j].At) })
		}
		p.Clauses = append(p.Clauses, c)
	}
	return p, recs, nil
}

type builder struct {
	ctx      context.Context
	q        Querier
	from, to time.Time
	byKind   map[string][]evidence.Record
	recs     []evidence.Record
	pack     *Pack
}

// count runs a COUNT query.
func (b *builder) count(sql string, args ...any) (int, error) {
	var n int
	err := b.q.QueryRow(b.ctx, sql, args...).Scan(&n)
	return n, err
}

// kinds returns the period's entries whose kind matches.
func (b *builder) kinds(match func(kind string) bool) []evidence.Record {
	var out []evidence.Record
	for _, r := range b.recs {
		if match(r.Kind) {
			out = append(out, r)
		}
	}
	return out
}

func is(kinds ...string) func(string) bool {
	return func(k string) bool { return slices.Contains(kinds, k) }
}

// entryItem names an entry by its subject, with chosen fields of its body.
func entryItem(r evidence.Record, fields ...string) Item {
	it := Item{ID: r.Subject, What: r.Kind, At: r.RecordedAt, Seq: r.Seq}
	if len(fields) > 0 {
		var body map[string]any
		if json.Unmarshal(r.Body, &body) == nil {
			var parts []string
			for _, f := range fields {
				if v := lookup(body, f); v != "" {
					parts = append(parts, f+"="+v)
				}
			}
			it.Detail = strings.Join(parts, ", ")
		}
	}
	return it
}

// lookup reads a dotted path of a JSON body as text.
func lookup(body map[string]any, path string) string {
	var v any = body
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// setting names a setting from the config table, with its default; one this
// build does not have says so rather than inventing it.
func setting(name, why string) Control {
	for _, s := range config.Settings {
		if s.Name == name {
			d := why
			if s.Default != "" {
				d += " (default " + s.Default + ")"
			}
			return Control{Type: "setting", Name: name, Detail: d}
		}
	}
	return Control{Type: "setting", Name: name, Detail: why + " (not in this build's settings table)"}
}

// schedule names a schedule from workflows.Schedules with its timing.
func schedule(id, why string) Control {
	for _, s := range workflows.Schedules {
		if s.ID != id {
			continue
		}
		when := "every " + s.Every.String()
		if s.Calendar != nil {
			when = s.Calendar.Comment
		}
		return Control{Type: "schedule", Name: id, Detail: fmt.Sprintf("%s: starts %s %s", why, s.Workflow, when)}
	}
	return Control{Type: "schedule", Name: id, Detail: why + " (not in this build's schedules table)"}
}

func workflow(name, why string) Control { return Control{Type: "workflow", Name: name, Detail: why} }

// hasSchedule reports whether this build creates the schedule.
func hasSchedule(id string) bool {
	return slices.ContainsFunc(workflows.Schedules, func(s workflows.Schedule) bool { return s.ID == id })
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }
