package sandbox_test

import (
	"bytes"
	"encoding/json"
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

func do(t *testing.T, method, u string, body any, header map[string]string) (int, map[string]any) {
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
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A feed moves IN_QUEUE -> IN_PROGRESS -> DONE, one step per getFeed, and
// only then has a result document; the upload URL refuses an access token and
// works for five minutes.
func TestFeedLifecycleAndUploadURL(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
	srv, base := sandboxtest.Start(t, sandbox.Options{Clock: clock.Now, Limits: sandbox.TestLimits()})
	id := srv.Generate(1)[0]

	status, doc := do(t, http.MethodPost, base+spapi.FeedDocumentsPath, map[string]string{"contentType": spapi.ContentTypePDF}, nil)
	require.Equal(t, http.StatusCreated, status)
	docID, upload := doc["feedDocumentId"].(string), doc["url"].(string)
	require.True(t, strings.HasPrefix(upload, base+"/sandbox/feed-documents/"), upload)

	status, _ = do(t, http.MethodPut, upload, []byte("%PDF-1.4\n"), map[string]string{"x-amz-access-token": "Atza|token"})
	assert.Equal(t, http.StatusBadRequest, status, "an access token on the pre-signed URL is refused")
	status, _ = do(t, http.MethodPut, upload, []byte("%PDF-1.4\n"), map[string]string{"Content-Type": spapi.ContentTypePDF})
	require.Equal(t, http.StatusOK, status)

	spec := map[string]any{"feedType": spapi.FeedTypeUploadVATInvoice, "marketplaceIds": []string{spapi.MarketplaceUK},
		"inputFeedDocumentId": docID, "feedOptions": map[string]string{
			spapi.FeedOptionOrderID: id, spapi.FeedOptionInvoiceNumber: "INV-9", spapi.FeedOptionTotalAmount: "10.00",
			spapi.FeedOptionTotalVATAmount: "1.67", spapi.FeedOptionDocumentType: spapi.DocumentTypeCreditNote}}
	status, created := do(t, http.MethodPost, base+spapi.FeedsPath, spec, nil)
	require.Equal(t, http.StatusAccepted, status)
	feedID := created["feedId"].(string)

	var seen []string
	for range 3 {
		status, f := do(t, http.MethodGet, base+spapi.FeedsPath+"/"+feedID, nil, nil)
		require.Equal(t, http.StatusOK, status)
		seen = append(seen, f["processingStatus"].(string))
		_, has := f["resultFeedDocumentId"]
		assert.Equal(t, f["processingStatus"] == spapi.FeedDone, has)
	}
	assert.Equal(t, []string{spapi.FeedInProgress, spapi.FeedDone, spapi.FeedDone}, seen, "IN_QUEUE when created, a step per call")
	require.Len(t, srv.Feeds("INV-9"), 1)
	assert.Equal(t, spapi.DocumentTypeCreditNote, srv.Feeds("INV-9")[0].Options[spapi.FeedOptionDocumentType])

	status, _ = do(t, http.MethodGet, base+spapi.FeedsPath+"/404", nil, nil)
	assert.Equal(t, http.StatusNotFound, status)

	// Five minutes later the upload URL has expired.
	clock.Advance(6 * time.Minute)
	status, _ = do(t, http.MethodPut, upload, []byte("%PDF-1.4\n"), nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, 1, srv.Requests(spapi.OpCreateFeed))
}
