package spapi_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/spapi"
)

var fakePDF = []byte("%PDF-1.4\n% an invoice\n%%EOF\n")

func invoiceSpec(orderID, docID, number, docType string) spapi.CreateFeedSpec {
	return spapi.CreateFeedSpec{FeedType: spapi.FeedTypeUploadVATInvoice, MarketplaceIDs: []string{spapi.MarketplaceUK},
		InputFeedDocumentID: docID, FeedOptions: map[string]string{
			spapi.FeedOptionOrderID: orderID, spapi.FeedOptionInvoiceNumber: number,
			spapi.FeedOptionTotalAmount: "119.99", spapi.FeedOptionTotalVATAmount: "20.00",
			spapi.FeedOptionDocumentType: docType,
		}}
}

// submit uploads a PDF for the order and polls the feed until it is finished,
// the way the upload activity does.
func submit(t *testing.T, e *env, orderID, number string) (*spapi.Feed, *spapi.ProcessingReport) {
	t.Helper()
	c := e.client
	doc, err := c.CreateFeedDocument(ctx(t), spapi.ContentTypePDF)
	require.NoError(t, err)
	require.NoError(t, c.UploadFeedDocument(ctx(t), doc, spapi.ContentTypePDF, fakePDF))
	feedID, err := c.CreateFeed(ctx(t), invoiceSpec(orderID, doc.FeedDocumentID, number, spapi.DocumentTypeInvoice))
	require.NoError(t, err)
	var seen []string
	for range 10 {
		f, err := c.GetFeed(ctx(t), feedID)
		require.NoError(t, err)
		seen = append(seen, f.ProcessingStatus)
		if !f.Finished() {
			continue
		}
		if f.ResultFeedDocumentID == "" {
			return f, nil
		}
		rd, err := c.GetFeedDocument(ctx(t), f.ResultFeedDocumentID)
		require.NoError(t, err)
		assert.Equal(t, "GZIP", rd.CompressionAlgorithm)
		b, err := c.DownloadFeedDocument(ctx(t), rd)
		require.NoError(t, err)
		rep, err := spapi.ParseProcessingReport(b)
		require.NoError(t, err)
		return f, rep
	}
	t.Fatalf("feed never finished: %v", seen)
	return nil, nil
}

func TestFeedUploadAcceptedBySandbox(t *testing.T) {
	e := setup(t, nil, withCredentials)
	id := e.srv.Generate(1)[0]
	f, rep := submit(t, e, id, "INV-2026-000001")
	assert.Equal(t, spapi.FeedDone, f.ProcessingStatus)
	out := spapi.JudgeFeed(f, rep)
	assert.True(t, out.Accepted, "%+v", out)
	assert.Equal(t, 1, out.Processed)
	assert.Equal(t, 1, out.Successful)
	feeds := e.srv.Feeds("INV-2026-000001")
	require.Len(t, feeds, 1)
	assert.Equal(t, id, feeds[0].Options[spapi.FeedOptionOrderID])
	assert.Equal(t, spapi.DocumentTypeInvoice, feeds[0].Options[spapi.FeedOptionDocumentType])

	// The same invoice accepted twice is a duplicate, for good.
	f, rep = submit(t, e, id, "INV-2026-000001")
	out = spapi.JudgeFeed(f, rep)
	assert.False(t, out.Accepted)
	assert.False(t, out.Transient)
	assert.Equal(t, []string{spapi.ResultDuplicateInvoice}, out.Codes)
}

func TestFeedRejectionsAreJudgedTransientOrPermanent(t *testing.T) {
	e := setup(t, nil, nil)
	id := e.srv.Generate(1)[0]
	cases := []struct {
		outcome   string
		transient bool
	}{
		{spapi.FeedFatal, true},
		{spapi.FeedCancelled, true},
		{spapi.ResultInternalError, true},
		{spapi.ResultServiceUnavailable, true},
		{spapi.ResultInvalidInvoiceNumber, false},
		{spapi.ResultAmountMismatch, false},
	}
	for i, c := range cases {
		e.srv.RejectNextFeed(id, c.outcome)
		f, rep := submit(t, e, id, "INV-X-"+string(rune('A'+i)))
		out := spapi.JudgeFeed(f, rep)
		assert.False(t, out.Accepted, c.outcome)
		assert.Equal(t, c.transient, out.Transient, c.outcome)
		assert.Equal(t, []string{c.outcome}, out.Codes)
	}
	// An order Amazon does not know is a permanent rejection in the report.
	f, rep := submit(t, e, "999-0000000-0000000", "INV-X-Z")
	out := spapi.JudgeFeed(f, rep)
	assert.Equal(t, []string{spapi.ResultOrderNotFound}, out.Codes)
	assert.False(t, out.Transient)
}

func TestCreateFeedOptionsValidatedAsAmazonDoes(t *testing.T) {
	e := setup(t, nil, nil)
	id := e.srv.Generate(1)[0]
	doc, err := e.client.CreateFeedDocument(ctx(t), spapi.ContentTypePDF)
	require.NoError(t, err)

	// createFeed before the upload: the document is empty.
	_, err = e.client.CreateFeed(ctx(t), invoiceSpec(id, doc.FeedDocumentID, "INV-1", spapi.DocumentTypeInvoice))
	var apiErr *spapi.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.Contains(t, apiErr.Message, "not been uploaded")

	require.NoError(t, e.client.UploadFeedDocument(ctx(t), doc, spapi.ContentTypePDF, fakePDF))
	for name, mod := range map[string]func(*spapi.CreateFeedSpec){
		"documenttype must be Invoice or CreditNote": func(s *spapi.CreateFeedSpec) { s.FeedOptions[spapi.FeedOptionDocumentType] = "Receipt" },
		"metadata:invoicenumber is required":         func(s *spapi.CreateFeedSpec) { delete(s.FeedOptions, spapi.FeedOptionInvoiceNumber) },
		"metadata:totalamount must be a decimal":     func(s *spapi.CreateFeedSpec) { s.FeedOptions[spapi.FeedOptionTotalAmount] = "12,00" },
		"UPLOAD_VAT_INVOICE only":                    func(s *spapi.CreateFeedSpec) { s.FeedType = "POST_PRODUCT_DATA" },
	} {
		spec := invoiceSpec(id, doc.FeedDocumentID, "INV-1", spapi.DocumentTypeInvoice)
		mod(&spec)
		_, err := e.client.CreateFeed(ctx(t), spec)
		require.ErrorAs(t, err, &apiErr, name)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode, name)
		assert.Contains(t, apiErr.Message, name)
		assert.False(t, spapi.IsRetryable(err), name)
	}
	_, err = e.client.CreateFeed(ctx(t), spapi.CreateFeedSpec{FeedType: spapi.FeedTypeUploadVATInvoice, InputFeedDocumentID: "x"})
	assert.ErrorIs(t, err, spapi.ErrInvalidParams)
	assert.ErrorContains(t, err, "MarketplaceIDs")
}

// storageHost serves a pre-signed URL on another host than SP-API's, so the
// test sees what goes where.
func storageHost(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	storage := httptest.NewServer(handler)
	t.Cleanup(storage.Close)
	return storage
}

func TestUploadCarriesNoAccessTokenAndRetriesStorageErrors(t *testing.T) {
	var puts atomic.Int32
	var gotBody []byte
	storage := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Empty(t, r.Header.Get("x-amz-access-token"), "the pre-signed URL is its own authorisation")
		assert.Equal(t, spapi.ContentTypePDF, r.Header.Get("Content-Type"))
		if puts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		gotBody, _ = io.ReadAll(r.Body)
	})
	e := setup(t, nil, withCredentials)
	doc := &spapi.FeedDocument{FeedDocumentID: "d1", URL: storage.URL + "/upload?X-Amz-Signature=SECRETSIG"}
	require.NoError(t, e.client.UploadFeedDocument(ctx(t), doc, spapi.ContentTypePDF, fakePDF))
	assert.Equal(t, int32(2), puts.Load())
	assert.Equal(t, fakePDF, gotBody)

	// A refused upload names the operation, never the signed URL.
	storage = storageHost(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	err := e.client.UploadFeedDocument(ctx(t), &spapi.FeedDocument{FeedDocumentID: "d1", URL: storage.URL + "/u?X-Amz-Signature=SECRETSIG"}, spapi.ContentTypePDF, fakePDF)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "uploadFeedDocument: HTTP 403")
	assert.NotContains(t, err.Error(), "SECRETSIG")
	storage.Close()
	err = e.client.UploadFeedDocument(ctx(t), &spapi.FeedDocument{FeedDocumentID: "d1", URL: storage.URL + "/u?X-Amz-Signature=SECRETSIG"}, spapi.ContentTypePDF, fakePDF)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "SECRETSIG")
}

func TestFeedResponsesValidatedNamingTheField(t *testing.T) {
	answers := map[string]string{
		"/feeds/2021-06-30/documents":    `{"url":"https://s3.example/x"}`,
		"/feeds/2021-06-30/feeds":        `{}`,
		"/feeds/2021-06-30/feeds/F1":     `{"feedId":"F1","feedType":"UPLOAD_VAT_INVOICE","createdTime":"2026-03-02T09:30:00Z","processingStatus":"DONE"}`,
		"/feeds/2021-06-30/feeds/F2":     `{"feedId":"F2","feedType":"UPLOAD_VAT_INVOICE","createdTime":"2026-03-02T09:30:00Z","processingStatus":"WAITING"}`,
		"/feeds/2021-06-30/documents/D1": `{"feedDocumentId":"D1","url":"ftp://x/y"}`,
		"/feeds/2021-06-30/documents/D2": `{"feedDocumentId":"D2","url":"https://x/y","compressionAlgorithm":"ZIP"}`,
	}
	amazon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(answers[r.URL.Path]))
	}))
	t.Cleanup(amazon.Close)
	c, err := spapi.New(spapi.Config{Endpoint: amazon.URL})
	require.NoError(t, err)
	_, err = c.CreateFeedDocument(ctx(t), spapi.ContentTypePDF)
	assert.ErrorContains(t, err, "createFeedDocument: unusable response: feedDocumentId: missing")
	_, err = c.CreateFeed(ctx(t), invoiceSpec("1", "d", "n", spapi.DocumentTypeInvoice))
	assert.ErrorContains(t, err, "createFeed: unusable response: feedId: missing")
	_, err = c.GetFeed(ctx(t), "F1")
	assert.ErrorContains(t, err, "resultFeedDocumentId: missing for a DONE feed")
	_, err = c.GetFeed(ctx(t), "F2")
	assert.ErrorContains(t, err, "processingStatus: missing or not one of")
	_, err = c.GetFeedDocument(ctx(t), "D1")
	assert.ErrorContains(t, err, "url: not an absolute http or https URL")
	_, err = c.GetFeedDocument(ctx(t), "D2")
	assert.ErrorContains(t, err, "compressionAlgorithm: not GZIP")
}

func TestDownloadGunzipsAndReportParses(t *testing.T) {
	report := `<?xml version="1.0"?><AmazonEnvelope><MessageType>ProcessingReport</MessageType><Message><MessageID>1</MessageID>
<ProcessingReport><StatusCode>Complete</StatusCode><ProcessingSummary><MessagesProcessed>1</MessagesProcessed>
<MessagesSuccessful>0</MessagesSuccessful><MessagesWithError>1</MessagesWithError><MessagesWithWarning>1</MessagesWithWarning></ProcessingSummary>
<Result><MessageID>1</MessageID><ResultCode>Warning</ResultCode><ResultMessageCode>LOW_RESOLUTION</ResultMessageCode></Result>
<Result><MessageID>1</MessageID><ResultCode>Error</ResultCode><ResultMessageCode>INVALID_INVOICE_NUMBER</ResultMessageCode>
<ResultDescription>bad number on the invoice to Jane MARKER-7F3A</ResultDescription></Result></ProcessingReport></Message></AmazonEnvelope>`
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(report))
	require.NoError(t, zw.Close())
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(zipped.Bytes())
	}))
	t.Cleanup(storage.Close)
	c, err := spapi.New(spapi.Config{Endpoint: storage.URL})
	require.NoError(t, err)
	b, err := c.DownloadFeedDocument(ctx(t), &spapi.FeedDocument{FeedDocumentID: "r", URL: storage.URL + "/r", CompressionAlgorithm: "GZIP"})
	require.NoError(t, err)
	rep, err := spapi.ParseProcessingReport(b)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.WithError)
	require.Len(t, rep.Results, 2)
	assert.NotContains(t, fmt.Sprintf("%+v", rep), "MARKER-7F3A", "Amazon's text about a document that names the buyer is never kept")
	out := spapi.JudgeFeed(&spapi.Feed{ProcessingStatus: spapi.FeedDone}, rep)
	assert.Equal(t, []string{spapi.ResultInvalidInvoiceNumber}, out.Codes, "warnings do not reject")
	assert.False(t, out.Transient)

	// Plain bytes announced as GZIP are a clear error.
	_, err = c.DownloadFeedDocument(ctx(t), &spapi.FeedDocument{FeedDocumentID: "r", URL: storage.URL + "/r"})
	require.NoError(t, err)
	plain := storageHost(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(report)) })
	_, err = c.DownloadFeedDocument(ctx(t), &spapi.FeedDocument{FeedDocumentID: "r", URL: plain.URL + "/r", CompressionAlgorithm: "GZIP"})
	assert.ErrorContains(t, err, "body: not GZIP as compressionAlgorithm says")
	_, err = spapi.ParseProcessingReport([]byte("<AmazonEnvelope><MessageType>Inventory</MessageType></AmazonEnvelope>"))
	assert.ErrorContains(t, err, "AmazonEnvelope.MessageType: not ProcessingReport")
	_, err = spapi.ParseProcessingReport([]byte("not xml"))
	assert.ErrorContains(t, err, "not a well-formed XML envelope")
}
