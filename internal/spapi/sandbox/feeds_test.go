package sandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
)

// do sends one request and returns the status and the JSON body, decoded and raw.
func do(t *testing.T, method, u string, body any, header map[string]string) (int, map[string]any, []byte) {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, raw
}

// newFeedsModelChecker checks bodies against the Feeds model's definitions.
func newFeedsModelChecker(t *testing.T) *modelChecker {
	t.Helper()
	var m struct {
		Definitions map[string]*schema `json:"definitions"`
	}
	require.NoError(t, json.Unmarshal(sandbox.FeedsModel(), &m))
	require.NotEmpty(t, m.Definitions)
	return &modelChecker{defs: m.Definitions}
}

// A feed moves IN_QUEUE -> IN_PROGRESS -> DONE, one step per getFeed, and
// only then has a result document; the upload URL refuses an access token and
// works for five minutes.
func TestFeedLifecycleAndUploadURL(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
	srv, base := sandboxtest.Start(t, sandbox.Options{Clock: clock.Now, Limits: sandbox.TestLimits()})
	id := srv.Generate(1)[0]
	model := newFeedsModelChecker(t)
	conforms := func(def string, raw []byte) {
		t.Helper()
		assert.Empty(t, model.check(t, def, raw), "%s: %s", def, raw)
	}

	status, doc, raw := do(t, http.MethodPost, base+spapi.FeedDocumentsPath, map[string]string{"contentType": spapi.ContentTypePDF}, nil)
	require.Equal(t, http.StatusCreated, status)
	conforms("CreateFeedDocumentResponse", raw)
	docID, upload := doc["feedDocumentId"].(string), doc["url"].(string)
	require.True(t, strings.HasPrefix(upload, base+"/sandbox/feed-documents/"), upload)

	status, _, _ = do(t, http.MethodPut, upload, []byte("%PDF-1.4\n"), map[string]string{"x-amz-access-token": "Atza|token"})
	assert.Equal(t, http.StatusBadRequest, status, "an access token on the pre-signed URL is refused")
	status, _, _ = do(t, http.MethodPut, upload, []byte("%PDF-1.4\n"), map[string]string{"Content-Type": spapi.ContentTypePDF})
	require.Equal(t, http.StatusOK, status)

	spec := map[string]any{"feedType": spapi.FeedTypeUploadVATInvoice, "marketplaceIds": []string{spapi.MarketplaceUK},
		"inputFeedDocumentId": docID, "feedOptions": map[string]string{
			spapi.FeedOptionOrderID: id, spapi.FeedOptionInvoiceNumber: "INV-9", spapi.FeedOptionTotalAmount: "10.00",
			spapi.FeedOptionTotalVATAmount: "1.67", spapi.FeedOptionDocumentType: spapi.DocumentTypeCreditNote}}
	status, created, raw := do(t, http.MethodPost, base+spapi.FeedsPath, spec, nil)
	require.Equal(t, http.StatusAccepted, status)
	conforms("CreateFeedResponse", raw)
	feedID := created["feedId"].(string)

	var seen []string
	for range 3 {
		status, f, raw := do(t, http.MethodGet, base+spapi.FeedsPath+"/"+feedID, nil, nil)
		require.Equal(t, http.StatusOK, status)
		conforms("Feed", raw)
		seen = append(seen, f["processingStatus"].(string))
		_, has := f["resultFeedDocumentId"]
		assert.Equal(t, f["processingStatus"] == spapi.FeedDone, has)
	}
	assert.Equal(t, []string{spapi.FeedInProgress, spapi.FeedDone, spapi.FeedDone}, seen, "IN_QUEUE when created, a step per call")
	require.Len(t, srv.Feeds("INV-9"), 1)
	assert.Equal(t, spapi.DocumentTypeCreditNote, srv.Feeds("INV-9")[0].Options[spapi.FeedOptionDocumentType])

	status, _, raw = do(t, http.MethodGet, base+spapi.FeedsPath+"/404", nil, nil)
	assert.Equal(t, http.StatusNotFound, status)
	conforms("ErrorList", raw)
	status, _, raw = do(t, http.MethodGet, base+spapi.FeedsPath+"/"+feedID, nil, nil)
	require.Equal(t, http.StatusOK, status)
	var done spapi.Feed
	require.NoError(t, json.Unmarshal(raw, &done))
	status, _, raw = do(t, http.MethodGet, base+spapi.FeedDocumentsPath+"/"+done.ResultFeedDocumentID, nil, nil)
	require.Equal(t, http.StatusOK, status)
	conforms("FeedDocument", raw)

	// The model's static examples answer their ids.
	status, ex, raw := do(t, http.MethodGet, base+spapi.FeedsPath+"/feedId1", nil, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "CANCELLED", ex["processingStatus"])
	conforms("Feed", raw)
	status, ex, _ = do(t, http.MethodGet, base+spapi.FeedDocumentsPath+"/0356cf79-b8b0-4226-b4b9-0ee058ea5760", nil, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "0356cf79-b8b0-4226-b4b9-0ee058ea5760", ex["feedDocumentId"])

	// Five minutes later the upload URL has expired.
	clock.Advance(6 * time.Minute)
	status, _, _ = do(t, http.MethodPut, upload, []byte("%PDF-1.4\n"), nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, 1, srv.Requests(spapi.OpCreateFeed))
}
