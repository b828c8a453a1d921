package sandbox

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/plusranger/dpp/internal/spapi"
)

// The sandbox's Feeds API 2021-06-30, for UPLOAD_VAT_INVOICE: createFeedDocument
// hands out an upload URL on this server (valid 5 minutes, like Amazon's
// pre-signed ones; a request to it that carries an SP-API access token is
// refused, since sending the token there would leak it to the storage host),
// createFeed checks the feed options as Amazon does, and each getFeed moves a
// feed one step IN_QUEUE -> IN_PROGRESS -> DONE, when a GZIP-compressed XML
// processing report appears as its resultFeedDocumentId. Test hooks:
// RejectNextFeed makes the next feed for an order fail (FATAL, or a report
// error code), Feeds lists what was submitted per document number. getFeed and
// getFeedDocument of the ids in the model's static sandbox examples (feedId1,
// 0356cf79-b8b0-4226-b4b9-0ee058ea5760) answer with those examples.

// parseFeedsModel takes the static examples of getFeed and getFeedDocument
// (the GET operations on one id) from the Feeds model; the sandbox answers the
// others itself.
func parseFeedsModel(raw []byte) (*parsedModel, error) {
	var m struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("sandbox: parsing the Feeds model: %w", err)
	}
	kept := map[string]map[string]json.RawMessage{}
	for p, ops := range m.Paths {
		if get, ok := ops["get"]; ok && strings.HasSuffix(p, "}") {
			kept[p] = map[string]json.RawMessage{"get": get}
		}
	}
	b, err := json.Marshal(map[string]any{"paths": kept})
	if err != nil {
		return nil, err
	}
	return parseModel(b)
}

// feedUploadsPath serves the pre-signed document URLs (PUT to upload, GET to
// download a report).
const feedUploadsPath = "/sandbox/feed-documents/"

// feedDocumentTTL is how long a document URL works, as Amazon's.
const feedDocumentTTL = 5 * 60 // seconds

type feedDoc struct {
	contentType string
	content     []byte
	uploaded    bool
	gzip        bool
	expires     int64 // unix seconds by the server clock
}

type sandboxFeed struct {
	spapi.Feed
	options map[string]string
	// outcome is "" (accept), spapi.FeedFatal, spapi.FeedCancelled or a report error code.
	outcome string
}

// SubmittedFeed is a feed createFeed accepted, as the Feeds test hook lists it.
type SubmittedFeed struct {
	FeedID           string
	Options          map[string]string
	ProcessingStatus string
	// ResultCode is the report's error code, or FATAL/CANCELLED; "" when accepted or unfinished.
	ResultCode string
}

// RejectNextFeed makes the next feed created for orderID end with outcome:
// spapi.FeedFatal or spapi.FeedCancelled (the feed's processing status), or a
// result code of the processing report (spapi.ResultInternalError,
// spapi.ResultInvalidInvoiceNumber, ...). Calls queue up, one per feed.
func (s *Server) RejectNextFeed(orderID, outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feedOutcomes == nil {
		s.feedOutcomes = map[string][]string{}
	}
	s.feedOutcomes[orderID] = append(s.feedOutcomes[orderID], outcome)
}

// HoldFeeds stops (true) or lets go on (false) the processing of every feed:
// while held, getFeed answers each feed as it is, so a test can act while an
// upload waits for Amazon.
func (s *Server) HoldFeeds(hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feedsHeld = hold
}

// Feeds returns the UPLOAD_VAT_INVOICE feeds created for a document number
// (metadata:invoicenumber), oldest first: a test counts them to prove a
// document was submitted once.
func (s *Server) Feeds(documentNumber string) []SubmittedFeed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubmittedFeed
	for _, id := range s.feedOrder {
		f := s.feeds[id]
		if f.options[spapi.FeedOptionInvoiceNumber] != documentNumber {
			continue
		}
		code := ""
		if f.Finished() {
			code = f.outcome
		}
		out = append(out, SubmittedFeed{FeedID: f.FeedID, Options: maps.Clone(f.options), ProcessingStatus: f.ProcessingStatus, ResultCode: code})
	}
	return out
}

func (s *Server) serveFeeds(w http.ResponseWriter, r *http.Request, rid, path string) {
	var op, id string
	switch {
	case path == spapi.FeedDocumentsPath && r.Method == http.MethodPost:
		op = spapi.OpCreateFeedDocument
	case path == spapi.FeedsPath && r.Method == http.MethodPost:
		op = spapi.OpCreateFeed
	case strings.HasPrefix(path, spapi.FeedsPath+"/") && r.Method == http.MethodGet:
		op, id = spapi.OpGetFeed, path[len(spapi.FeedsPath)+1:]
	case strings.HasPrefix(path, spapi.FeedDocumentsPath+"/") && r.Method == http.MethodGet:
		op, id = spapi.OpGetFeedDocument, path[len(spapi.FeedDocumentsPath)+1:]
	default:
		s.reply(w, "", rid, http.StatusNotFound, errorList("NotFound", "Resource not found.", ""))
		return
	}
	if id, _ = url.PathUnescape(id); strings.Contains(id, "/") {
		s.reply(w, op, rid, http.StatusNotFound, errorList("NotFound", "Resource not found.", ""))
		return
	}
	s.mu.Lock()
	s.requests[op]++
	s.mu.Unlock()
	if !s.limiters[op].Allow() {
		s.reply(w, op, rid, http.StatusTooManyRequests, injectedError(http.StatusTooManyRequests))
		return
	}
	switch op {
	case spapi.OpCreateFeedDocument:
		s.createFeedDocument(w, r, rid)
	case spapi.OpCreateFeed:
		s.createFeed(w, r, rid)
	case spapi.OpGetFeed:
		s.getFeed(w, rid, id)
	case spapi.OpGetFeedDocument:
		s.getFeedDocument(w, r, rid, id)
	}
}

func (s *Server) createFeedDocument(w http.ResponseWriter, r *http.Request, rid string) {
	var in struct {
		ContentType string `json:"contentType"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.ContentType == "" {
		s.reply(w, spapi.OpCreateFeedDocument, rid, http.StatusBadRequest, errorList("InvalidInput", "contentType is required.", ""))
		return
	}
	s.mu.Lock()
	id := s.newFeedDocLocked(&feedDoc{contentType: in.ContentType})
	s.mu.Unlock()
	body, _ := json.Marshal(spapi.FeedDocument{FeedDocumentID: id, URL: documentURL(r, id)})
	s.reply(w, spapi.OpCreateFeedDocument, rid, http.StatusCreated, body)
}

func (s *Server) newFeedDocLocked(d *feedDoc) string {
	s.feedSeq++
	id := fmt.Sprintf("amzn1.tortuga.4.eu.%s-%06d", s.idPrefix, s.feedSeq)
	d.expires = s.opts.Clock().Unix() + feedDocumentTTL
	if s.feedDocs == nil {
		s.feedDocs, s.feeds = map[string]*feedDoc{}, map[string]*sandboxFeed{}
	}
	s.feedDocs[id] = d
	return id
}

// documentURL is the pre-signed URL of a document on this server, as the
// client reached it.
func documentURL(r *http.Request, id string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + feedUploadsPath + url.PathEscape(id) + "?X-Amz-Expires=300&X-Amz-Signature=sandbox"
}

// serveFeedDocument is the pre-signed URL: PUT stores an upload, GET returns a
// report. An expired URL gets 403 as from S3.
func (s *Server) serveFeedDocument(w http.ResponseWriter, r *http.Request, path string) {
	id, err := url.PathUnescape(strings.TrimPrefix(path, feedUploadsPath))
	s.mu.Lock()
	d, ok := s.feedDocs[id]
	expired := ok && s.opts.Clock().Unix() > d.expires
	s.mu.Unlock()
	switch {
	case err != nil || !ok:
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	case expired:
		http.Error(w, "AccessDenied: Request has expired", http.StatusForbidden)
		return
	}
	if r.Header.Get(headerTokenInReq) != "" {
		http.Error(w, "InvalidArgument: unexpected x-amz-access-token header", http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodPut:
		b, err := io.ReadAll(io.LimitReader(r.Body, 10<<20+1))
		if err != nil || len(b) > 10<<20 {
			http.Error(w, "EntityTooLarge", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		d.content, d.uploaded = b, true
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		s.mu.Lock()
		content, up := d.content, d.uploaded
		s.mu.Unlock()
		if !up {
			http.Error(w, "NoSuchKey", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", d.contentType)
		_, _ = w.Write(content)
	default:
		http.Error(w, "MethodNotAllowed", http.StatusMethodNotAllowed)
	}
}

// createFeed accepts UPLOAD_VAT_INVOICE feeds whose options Amazon would
// accept: every metadata key present, amounts as decimals, documenttype
// Invoice or CreditNote, and an uploaded PDF as input document.
func (s *Server) createFeed(w http.ResponseWriter, r *http.Request, rid string) {
	op := spapi.OpCreateFeed
	var in spapi.CreateFeedSpec
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "The body is not JSON.", ""))
		return
	}
	if problem := checkFeedSpec(in); problem != "" {
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", problem, ""))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.feedDocs[in.InputFeedDocumentID]
	switch {
	case !ok:
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "inputFeedDocumentId is not a document of this seller.", ""))
		return
	case !d.uploaded:
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "The input feed document has not been uploaded.", ""))
		return
	}
	orderID := in.FeedOptions[spapi.FeedOptionOrderID]
	outcome := ""
	switch {
	case len(s.feedOutcomes[orderID]) > 0:
		outcome, s.feedOutcomes[orderID] = s.feedOutcomes[orderID][0], s.feedOutcomes[orderID][1:]
	case d.contentType != spapi.ContentTypePDF || !bytes.HasPrefix(d.content, []byte("%PDF-")):
		outcome = spapi.ResultInvalidDocument
	case s.orders[orderID] == nil:
		outcome = spapi.ResultOrderNotFound
	case s.acceptedFeedLocked(in.FeedOptions[spapi.FeedOptionInvoiceNumber]):
		outcome = spapi.ResultDuplicateInvoice
	}
	s.feedSeq++
	id := fmt.Sprintf("%d", 50000000000+s.feedSeq)
	s.feeds[id] = &sandboxFeed{Feed: spapi.Feed{FeedID: id, FeedType: in.FeedType, MarketplaceIDs: in.MarketplaceIDs,
		CreatedTime: spapi.NewTime(s.opts.Clock()), ProcessingStatus: spapi.FeedInQueue}, options: in.FeedOptions, outcome: outcome}
	s.feedOrder = append(s.feedOrder, id)
	body, _ := json.Marshal(map[string]string{"feedId": id})
	s.reply(w, op, rid, http.StatusAccepted, body)
}

func (s *Server) acceptedFeedLocked(number string) bool {
	for _, f := range s.feeds {
		if f.options[spapi.FeedOptionInvoiceNumber] == number && f.ProcessingStatus == spapi.FeedDone && f.outcome == "" {
			return true
		}
	}
	return false
}

func checkFeedSpec(in spapi.CreateFeedSpec) string {
	switch {
	case in.FeedType != spapi.FeedTypeUploadVATInvoice:
		return "The sandbox accepts feedType UPLOAD_VAT_INVOICE only."
	case len(in.MarketplaceIDs) < 1 || len(in.MarketplaceIDs) > 25:
		return "marketplaceIds must have 1 to 25 items."
	case in.InputFeedDocumentID == "":
		return "inputFeedDocumentId is required."
	}
	for _, k := range []string{spapi.FeedOptionOrderID, spapi.FeedOptionInvoiceNumber, spapi.FeedOptionTotalAmount,
		spapi.FeedOptionTotalVATAmount, spapi.FeedOptionDocumentType} {
		if in.FeedOptions[k] == "" {
			return "feedOptions " + k + " is required for UPLOAD_VAT_INVOICE."
		}
	}
	for _, k := range []string{spapi.FeedOptionTotalAmount, spapi.FeedOptionTotalVATAmount} {
		if _, err := spapi.Decimal(in.FeedOptions[k]).Minor(); err != nil {
			return "feedOptions " + k + " must be a decimal amount."
		}
	}
	if dt := in.FeedOptions[spapi.FeedOptionDocumentType]; dt != spapi.DocumentTypeInvoice && dt != spapi.DocumentTypeCreditNote {
		return "feedOptions metadata:documenttype must be Invoice or CreditNote."
	}
	return ""
}

// getFeed moves the feed one step on and answers with it.
func (s *Server) getFeed(w http.ResponseWriter, rid, id string) {
	s.mu.Lock()
	f, ok := s.feeds[id]
	if ok && !f.Finished() && !s.feedsHeld {
		s.advanceFeedLocked(f)
	}
	var body []byte
	if ok {
		body, _ = json.Marshal(f.Feed)
	}
	s.mu.Unlock()
	if !ok {
		if ex := s.feedsModel.matchStatic(spapi.OpGetFeed, "", url.Values{"feedId": {id}}); ex != nil {
			s.reply(w, spapi.OpGetFeed, rid, ex.status, ex.body)
			return
		}
		s.reply(w, spapi.OpGetFeed, rid, http.StatusNotFound, errorList("NotFound", "The feed does not exist.", ""))
		return
	}
	s.reply(w, spapi.OpGetFeed, rid, http.StatusOK, body)
}

func (s *Server) advanceFeedLocked(f *sandboxFeed) {
	now := spapi.NewTime(s.opts.Clock())
	if f.ProcessingStatus == spapi.FeedInQueue {
		if f.outcome == spapi.FeedCancelled {
			f.ProcessingStatus = spapi.FeedCancelled
			return
		}
		f.ProcessingStatus, f.ProcessingStartTime = spapi.FeedInProgress, now
		return
	}
	f.ProcessingEndTime = now
	if f.outcome == spapi.FeedFatal {
		f.ProcessingStatus = spapi.FeedFatal
		return
	}
	f.ProcessingStatus = spapi.FeedDone
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(processingReport(f.outcome))
	_ = zw.Close()
	f.ResultFeedDocumentID = s.newFeedDocLocked(&feedDoc{contentType: "text/xml; charset=UTF-8", content: zipped.Bytes(), uploaded: true, gzip: true})
}

// processingReport writes Amazon's XML processing report of a one-document
// feed: accepted when code is "", else one Error with that code.
func processingReport(code string) []byte {
	type result struct {
		MessageID   int    `xml:"MessageID"`
		ResultCode  string `xml:"ResultCode"`
		Code        string `xml:"ResultMessageCode"`
		Description string `xml:"ResultDescription"`
	}
	type summary struct {
		Processed   int `xml:"MessagesProcessed"`
		Successful  int `xml:"MessagesSuccessful"`
		WithError   int `xml:"MessagesWithError"`
		WithWarning int `xml:"MessagesWithWarning"`
	}
	type report struct {
		DocumentTransactionID int      `xml:"DocumentTransactionID"`
		StatusCode            string   `xml:"StatusCode"`
		Summary               summary  `xml:"ProcessingSummary"`
		Results               []result `xml:"Result"`
	}
	type envelope struct {
		XMLName     xml.Name `xml:"AmazonEnvelope"`
		MessageType string   `xml:"MessageType"`
		MessageID   int      `xml:"Message>MessageID"`
		Report      report   `xml:"Message>ProcessingReport"`
	}
	rep := report{DocumentTransactionID: 1, StatusCode: "Complete", Summary: summary{Processed: 1, Successful: 1}}
	if code != "" {
		rep.Summary = summary{Processed: 1, WithError: 1}
		rep.Results = []result{{MessageID: 1, ResultCode: "Error", Code: code, Description: reportDescriptions[code]}}
	}
	b, _ := xml.MarshalIndent(envelope{MessageType: "ProcessingReport", MessageID: 1, Report: rep}, "", "  ")
	return append([]byte(xml.Header), b...)
}

var reportDescriptions = map[string]string{
	spapi.ResultInternalError:        "We encountered an internal error. Please resubmit the document.",
	spapi.ResultServiceUnavailable:   "The service is temporarily unavailable. Please resubmit the document.",
	spapi.ResultInvalidInvoiceNumber: "The invoice number is not valid for this order.",
	spapi.ResultOrderNotFound:        "The order id in the feed options does not match an order of this seller.",
	spapi.ResultAmountMismatch:       "The total amount does not match the order.",
	spapi.ResultDuplicateInvoice:     "An invoice with this number was already accepted for this order.",
	spapi.ResultInvalidDocument:      "The document is not a readable PDF.",
}

func (s *Server) getFeedDocument(w http.ResponseWriter, r *http.Request, rid, id string) {
	s.mu.Lock()
	d, ok := s.feedDocs[id]
	if ok {
		d.expires = s.opts.Clock().Unix() + feedDocumentTTL
	}
	s.mu.Unlock()
	if !ok {
		if ex := s.feedsModel.matchStatic(spapi.OpGetFeedDocument, "", url.Values{"feedDocumentId": {id}}); ex != nil {
			s.reply(w, spapi.OpGetFeedDocument, rid, ex.status, ex.body)
			return
		}
		s.reply(w, spapi.OpGetFeedDocument, rid, http.StatusNotFound, errorList("NotFound", "The feed document does not exist.", ""))
		return
	}
	doc := spapi.FeedDocument{FeedDocumentID: id, URL: documentURL(r, id)}
	if d.gzip {
		doc.CompressionAlgorithm = "GZIP"
	}
	body, _ := json.Marshal(doc)
	s.reply(w, spapi.OpGetFeedDocument, rid, http.StatusOK, body)
}
