package spapi_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// The destination calls go with the grantless token (client credentials,
// scope sellingpartnerapi::notifications), the subscription calls with the
// seller's; each kind is fetched once and cached apart, and a revoked one is
// fetched again. The sandbox refuses the wrong kind, as Amazon does.
func TestNotificationsUseGrantlessTokenForDestinations(t *testing.T) {
	g := testenv.GoAWSForTest(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test") // goaws takes any
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	sq, err := notifications.NewSQSClient(ctx(t), g.Region, g.Endpoint())
	require.NoError(t, err)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	q, err := sq.CreateQueue(ctx(t), &sqs.CreateQueueInput{QueueName: aws.String("grantless-" + hex.EncodeToString(b))})
	require.NoError(t, err)
	arn, err := (&notifications.Queue{SQS: sq, URL: aws.ToString(q.QueueUrl)}).ARN(ctx(t))
	require.NoError(t, err)

	creds := &sandbox.Credentials{ClientID: "amzn1.application-oa2-client.test", ClientSecret: "secret", RefreshToken: "Atzr|refresh"}
	e := setup(t, func(o *sandbox.Options) { o.SQS, o.Credentials = sq, creds }, withCredentials)
	c := e.client

	dests, err := c.GetDestinations(ctx(t))
	require.NoError(t, err)
	assert.Empty(t, dests)
	sub, err := c.GetSubscription(ctx(t), notifications.TypeOrderChange)
	require.NoError(t, err)
	assert.Nil(t, sub, "no subscription yet: 404 is nil, not an error")

	dest, err := c.CreateDestination(ctx(t), "dpp-order-change", arn)
	require.NoError(t, err)
	subID, err := c.CreateSubscription(ctx(t), notifications.TypeOrderChange, dest)
	require.NoError(t, err)
	dests, err = c.GetDestinations(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, []spapi.Destination{{ID: dest, Name: "dpp-order-change", SQSARN: arn}}, dests)
	sub, err = c.GetSubscription(ctx(t), notifications.TypeOrderChange)
	require.NoError(t, err)
	assert.Equal(t, &spapi.Subscription{ID: subID, PayloadVersion: "1.0", DestinationID: dest}, sub)
	assert.Equal(t, 2, e.srv.TokenRequests(), "one grantless and one seller's token, each cached")

	e.srv.RevokeTokens()
	_, err = c.GetDestinations(ctx(t))
	require.NoError(t, err)
	_, err = c.GetSubscription(ctx(t), notifications.TypeOrderChange)
	require.NoError(t, err)
	assert.Equal(t, 4, e.srv.TokenRequests(), "after a revocation each kind is fetched again")

	// The wrong kind of token, or none, is refused.
	token := func(form url.Values) string {
		form.Set("client_id", creds.ClientID)
		form.Set("client_secret", creds.ClientSecret)
		resp, err := http.PostForm(e.base+"/auth/o2/token", form)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var m struct {
			AccessToken string `json:"access_token"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return m.AccessToken
	}
	seller := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {creds.RefreshToken}})
	grantless := token(url.Values{"grant_type": {"client_credentials"}, "scope": {spapi.NotificationsScope}})
	call := func(path, tok string) int {
		req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
		if tok != "" {
			req.Header.Set("x-amz-access-token", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	subPath := spapi.NotificationsSubscriptionsPath + notifications.TypeOrderChange
	assert.Equal(t, http.StatusForbidden, call(spapi.NotificationsDestinationsPath, seller))
	assert.Equal(t, http.StatusForbidden, call(spapi.NotificationsDestinationsPath, ""))
	assert.Equal(t, http.StatusOK, call(spapi.NotificationsDestinationsPath, grantless))
	assert.Equal(t, http.StatusForbidden, call(subPath, grantless))
	assert.Equal(t, http.StatusOK, call(subPath, seller))
	for _, l := range e.logs {
		for _, entry := range l.All() {
			for _, v := range entry.ContextMap() {
				if s, ok := v.(string); ok && strings.HasPrefix(s, "Atza|") {
					t.Fatalf("a token in the logs: %v", entry)
				}
			}
		}
	}
}
