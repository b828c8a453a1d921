// Package activities holds every Temporal activity of the system: all I/O (SP-API,
// KMS, PostgreSQL, Temporal client calls) happens here, never in workflows.
// Inputs and results carry only non-PII facts and references: they are recorded in
// workflow history.
package activities

import "time"

// Error types a workflow's retry policy treats as final: retrying cannot help.
const (
	// ErrInvalidOrder: SP-API answered with a malformed order or one lacking a required field.
	ErrInvalidOrder = "InvalidOrder"
	// ErrInvalidInput: an activity was called with an argument that can never work.
	ErrInvalidInput = "InvalidInput"
	// ErrOrderNotFound: SP-API does not know the order (HTTP 404/400 on getOrder).
	ErrOrderNotFound = "OrderNotFound"
)

// FetchAndSealInput names the order to fetch from SP-API and seal.
type FetchAndSealInput struct {
	AmazonOrderID string `json:"amazonOrderId"`
}

// OrderFacts is what the workflow may know about an order: no PII, only dates,
// amounts, flags and counts.
type OrderFacts struct {
	AmazonOrderID string    `json:"amazonOrderId"`
	MarketplaceID string    `json:"marketplaceId"`
	PurchasedAt   time.Time `json:"purchasedAt"`
	// LatestDeliveryAt is Amazon's promised latest delivery date, or purchase +
	// DPP_DELIVERY_FALLBACK when the order has none: the assumed delivery when no
	// delivery is reported.
	LatestDeliveryAt time.Time `json:"latestDeliveryAt"`
	// DeliveredAt is set when SP-API already reports every package delivered.
	DeliveredAt     *time.Time `json:"deliveredAt,omitempty"`
	Cancelled       bool       `json:"cancelled"`
	Business        bool       `json:"business"`
	Currency        string     `json:"currency"`
	GrandTotalMinor int64      `json:"grandTotalMinor"`
	SealedFields    int        `json:"sealedFields"`
	// PIIRetention is the policy in force when the order was sealed
	// (DPP_PII_RETENTION); recorded in history so replays agree.
	PIIRetention time.Duration `json:"piiRetention"`
	// AlreadyPurged is true when the order's PII was erased before: nothing was fetched.
	AlreadyPurged bool `json:"alreadyPurged,omitempty"`
	// RecordedPurgeDueAt and OnHold are the retention state the database holds
	// (set by an earlier run of the order's workflow), so a run started again
	// after a terminated one keeps its hold and its due time.
	RecordedPurgeDueAt *time.Time `json:"recordedPurgeDueAt,omitempty"`
	OnHold             bool       `json:"onHold,omitempty"`
	// SealLevel is SealLevel of the worker that ran FetchAndSeal: the lifecycle
	// changes its code had. Recorded in history, it lets the workflow take every
	// change up to that level without a version marker (0 in runs sealed before).
	SealLevel int `json:"sealLevel,omitempty"`
}

// SealLevel numbers the order lifecycle's changes made after the three that
// RecordedPurgeDueAt stands for. A change to the lifecycle after sealing adds
// one and is gated with the level (workflows' lifecycle.since): runs sealed by
// this code take it without asking, runs sealed before ask workflow.GetVersion.
// Level 2: the lifecycle starts the invoice's TaxDocumentUpload ("upload-invoice").
// Level 3: credit notes ("credit-notes").
// Level 4: credit notes go to Amazon like the invoice ("upload-credit-notes").
const SealLevel = 4

// IssueInvoiceInput names the order to invoice.
type IssueInvoiceInput struct {
	AmazonOrderID string `json:"amazonOrderId"`
}

// InvoiceByAmazon is the InvoiceRef kind when Amazon, as deemed supplier,
// invoices the buyer: no number, nothing stored.
const InvoiceByAmazon = "by-amazon"

// InvoiceRef identifies an issued VAT invoice.
type InvoiceRef struct {
	Number          string    `json:"number"`
	Kind            string    `json:"kind"`
	IssuedAt        time.Time `json:"issuedAt"`
	TotalGrossMinor int64     `json:"totalGrossMinor"`
	TotalVATMinor   int64     `json:"totalVatMinor"`
	// Upload says the invoice goes to Amazon (DPP_UPLOAD_INVOICES, read when it
	// was issued and recorded here so the workflow decides deterministically).
	// Omitted when false: with uploads off the history is what it was.
	Upload bool `json:"upload,omitempty"`
}

// PurgeInput asks for the Cryptographic Erase of an order's PII.
type PurgeInput struct {
	AmazonOrderID string `json:"amazonOrderId"`
	// Reason is one of retention-expired, purge-now, cancelled, retention-audit.
	Reason string `json:"reason"`
	// Detail is the requester's reason code (e.g. amazon-deletion-request), never free text.
	Detail      string    `json:"detail,omitempty"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	DueAt       time.Time `json:"dueAt"`
}

// PurgeResult references the certificate of sanitization in the evidence log.
type PurgeResult struct {
	PurgedAt        time.Time `json:"purgedAt"`
	FieldsErased    int       `json:"fieldsErased"`
	CertificateSeq  int64     `json:"certificateSeq"`
	CertificateHash string    `json:"certificateHash"`
}

// SyncOrdersInput configures one OrderSync pass; zero values take the worker's config.
type SyncOrdersInput struct {
	// Name of the watermark row; lets tests and several sellers keep separate watermarks.
	Name string `json:"name,omitempty"`
}

// SyncResult counts what one OrderSync pass did.
type SyncResult struct {
	Seen           int `json:"seen"`
	Started        int `json:"started"`
	AlreadyStarted int `json:"alreadyStarted"`
	SkippedPurged  int `json:"skippedPurged"`
	// AlreadyReported counts orders seen again whose update the previous pass reported.
	AlreadyReported int       `json:"alreadyReported"`
	Delivered       int       `json:"delivered"`
	Cancelled       int       `json:"cancelled"`
	Pages           int       `json:"pages"`
	Watermark       time.Time `json:"watermark"`
	// Malformed counts orders on the search pages that could not be decoded or
	// failed validation: recorded in sync_rejects, the rest of the page handled.
	Malformed int `json:"malformed"`
	// RejectsRetried counts recorded malformed orders asked for again (getOrder)
	// this pass; RejectsResolved those that turned out valid and were handled
	// (by the retry or because the search served them valid).
	RejectsRetried  int `json:"rejectsRetried"`
	RejectsResolved int `json:"rejectsResolved"`
	// MissedByNotifications counts orders this pass started that no ORDER_CHANGE
	// notification reported (only with notifications on; it should be zero).
	MissedByNotifications int `json:"missedByNotifications,omitempty"`
	// CreditedAfterLifecycle counts orders cancelled after their lifecycle had
	// ended whose cancellation has its credit note (issued by this pass, or
	// found issued: one per order in any case).
	CreditedAfterLifecycle int `json:"creditedAfterLifecycle,omitempty"`
	// ItemsCancelled counts items cancelled on their own, reported to their
	// order's lifecycle for a credit note.
	ItemsCancelled int `json:"itemsCancelled,omitempty"`
}

// SweepInput configures one batch of the tax record sweep.
type SweepInput struct {
	BatchSize int `json:"batchSize"`
}

// SweepResult counts one batch.
type SweepResult struct {
	Purged int `json:"purged"`
	// TextsErased counts the free texts erased (internal/freetext).
	TextsErased int `json:"textsErased,omitempty"`
	// IncidentTextsErased counts the closed incidents whose texts were erased
	// (internal/incident EraseTextsDue).
	IncidentTextsErased int  `json:"incidentTextsErased,omitempty"`
	Remaining           bool `json:"remaining"`
}

// ErrInvoiceNotIssuable: the order's invoice cannot be issued, whatever the
// retries; the failure's details carry the problem code (orders.Problem*).
const ErrInvoiceNotIssuable = "InvoiceNotIssuable"

// RetentionRecord is what an order's workflow knows about its retention: when
// the purge is due and whether a legal hold stops it.
type RetentionRecord struct {
	AmazonOrderID string    `json:"amazonOrderId"`
	PurgeDueAt    time.Time `json:"purgeDueAt"`
	OnHold        bool      `json:"onHold"`
}

// OrderProblemInput records a step of an order that failed for good.
type OrderProblemInput struct {
	AmazonOrderID string `json:"amazonOrderId"`
	// Step is the step that failed, e.g. "invoice".
	Step string `json:"step"`
	// Code is the problem code, e.g. "invoice-no-buyer-address".
	Code string `json:"code"`
}

// OrderProblemResult references the problem's evidence entry.
type OrderProblemResult struct {
	EvidenceSeq int64 `json:"evidenceSeq"`
}

// AuditInput configures one batch of the retention audit.
type AuditInput struct {
	// AsOf is the audit's time: orders due at or before it are overdue.
	AsOf      time.Time `json:"asOf"`
	BatchSize int       `json:"batchSize"`
	// After is the cursor: the due time and id of the last order a previous batch
	// looked at (orders whose workflow still runs are skipped, not purged).
	AfterDueAt time.Time `json:"afterDueAt,omitempty"`
	AfterID    string    `json:"afterId,omitempty"`
}

// AuditResult counts one batch of the retention audit.
type AuditResult struct {
	// Found: sealed orders past their purge due time and not on hold.
	Found int `json:"found"`
	// Purged by the audit, each with a certificate (reason retention-audit).
	Purged int `json:"purged"`
	// Running: overdue orders whose workflow still runs; left to it, reported.
	Running    int      `json:"running"`
	RunningIDs []string `json:"runningIds,omitempty"`
	// Remaining is true when more overdue orders may follow the cursor.
	Remaining  bool      `json:"remaining"`
	AfterDueAt time.Time `json:"afterDueAt,omitempty"`
	AfterID    string    `json:"afterId,omitempty"`
}

// AuditSummary is the retention audit's evidence entry: counts and ids only.
type AuditSummary struct {
	AuditID    string    `json:"auditId"`
	AsOf       time.Time `json:"asOf"`
	Found      int       `json:"found"`
	Purged     int       `json:"purged"`
	Running    int       `json:"running"`
	RunningIDs []string  `json:"runningIds,omitempty"`
}

// NoteInput is a person's note on an order (a signal's optional "note"), to be
// sealed with the order's PII and erased with it.
type NoteInput struct {
	AmazonOrderID string `json:"amazonOrderId"`
	// Field names the note among the order's sealed fields, e.g. "note.legal-hold.1".
	Field string `json:"field"`
	Text  string `json:"text"`
}
