package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi"
)

// Check names of the SP-API group.
const (
	CheckEndpoint = "sp-api endpoint"
	CheckLWA      = "lwa credentials"
	CheckPII      = "pii roles (getOrder)"
)

func checkSPAPI(ctx context.Context, cfg *config.Config, opts Options) []Result {
	var out []Result
	out = append(out, checkEndpoint(cfg))
	c, err := spapi.New(spapi.Config{Endpoint: cfg.SPAPIEndpoint, TokenURL: cfg.LWATokenURL, ClientID: cfg.LWAClientID,
		ClientSecret: cfg.LWAClientSecret, RefreshToken: cfg.LWARefreshToken, MaxAttempts: 2, RetryBaseDelay: time.Second})
	if err != nil {
		return append(out, fail(CheckLWA, oneLine(err), "correct SPAPI_ENDPOINT and LWA_TOKEN_URL"))
	}
	ttl, err := c.CheckToken(ctx)
	var apiErr *spapi.Error
	switch {
	case errors.Is(err, spapi.ErrNoCredentials):
		out = append(out, warn(CheckLWA, "no LWA credentials: SP-API is the sandbox, which needs no token",
			"in production set LWA_CLIENT_ID, LWA_CLIENT_SECRET (from Solution Provider Portal) and LWA_REFRESH_TOKEN (from the seller's authorisation)"))
	case errors.As(err, &apiErr) && apiErr.Code == "invalid_client":
		return append(out, fail(CheckLWA, fmt.Sprintf("LWA refused the client (HTTP %d invalid_client)", apiErr.StatusCode),
			"LWA_CLIENT_ID or LWA_CLIENT_SECRET is wrong, or the secret expired (LWA secrets expire 180 days after creation): copy the current client secret from Solution Provider Portal (Develop Apps > View LWA credentials) into LWA_CLIENT_SECRET"))
	case errors.As(err, &apiErr) && apiErr.Code == "invalid_grant":
		return append(out, fail(CheckLWA, fmt.Sprintf("LWA refused the refresh token (HTTP %d invalid_grant)", apiErr.StatusCode),
			"LWA_REFRESH_TOKEN is revoked, mistyped or belongs to another application: have the seller authorise the application again (Seller Central > Apps and Services > Manage Your Apps, or self-authorisation in Solution Provider Portal) and set the new refresh token"))
	case err != nil:
		return append(out, fail(CheckLWA, "no access token: "+oneLine(err),
			"check LWA_TOKEN_URL ("+cfg.LWATokenURL+") is reachable and the LWA_* settings"))
	default:
		out = append(out, ok(CheckLWA, fmt.Sprintf("the refresh token gives an access token valid %s", ttl.Round(time.Second))))
	}
	return append(out, checkPII(ctx, c, cfg, opts))
}

func checkEndpoint(cfg *config.Config) Result {
	u, err := url.Parse(cfg.SPAPIEndpoint)
	if err != nil {
		return fail(CheckEndpoint, "SPAPI_ENDPOINT does not parse", "set SPAPI_ENDPOINT to "+spapi.DefaultEndpoint)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	switch {
	case u.Scheme == "https":
		return ok(CheckEndpoint, cfg.SPAPIEndpoint+" over HTTPS (TLS 1.2 or later)")
	case loopback:
		return warn(CheckEndpoint, cfg.SPAPIEndpoint+" is a local sandbox over plain HTTP",
			"in production set SPAPI_ENDPOINT="+spapi.DefaultEndpoint+" (EU, includes the UK)")
	}
	return fail(CheckEndpoint, cfg.SPAPIEndpoint+" is plain HTTP to another host: Amazon Information would cross the network unencrypted",
		"use the https:// endpoint, e.g. "+spapi.DefaultEndpoint)
}

// checkPII asks getOrder for the restricted datasets and says whether buyer
// name and address came back. SP-API has no call that lists an application's
// roles: the answer to getOrder is how an application learns what its roles
// give it.
func checkPII(ctx context.Context, c *spapi.Client, cfg *config.Config, opts Options) Result {
	id := opts.OrderID
	if id == "" {
		res, err := c.SearchOrders(ctx, spapi.SearchOrdersParams{CreatedAfter: time.Now().Add(-30 * 24 * time.Hour),
			MarketplaceIDs: cfg.MarketplaceIDs, MaxResultsPerPage: 20})
		if err != nil {
			return fail(CheckPII, "searchOrders failed: "+oneLine(err), roleFix(err, "the Orders API needs the Inventory and Order Tracking role"))
		}
		if len(res.Orders) == 0 {
			return warn(CheckPII, "no order in the last 30 days in "+strings.Join(cfg.MarketplaceIDs, ",")+" to try getOrder on",
				"run `starter doctor -order <amazonOrderId>` with a recent order of the seller")
		}
		id = res.Orders[len(res.Orders)-1].OrderID
	}
	o, err := c.GetOrder(ctx, id, []string{spapi.IncludeBuyer, spapi.IncludeRecipient, spapi.IncludeFulfillment})
	var apiErr *spapi.Error
	if errors.As(err, &apiErr) && (apiErr.StatusCode == 403 || apiErr.StatusCode == 401) {
		return fail(CheckPII, fmt.Sprintf("getOrder %s refused: HTTP %d %s", id, apiErr.StatusCode, apiErr.Code),
			roleFix(err, "the application lacks the Inventory and Order Tracking role, or the seller has not authorised it for this marketplace"))
	}
	if err != nil {
		return fail(CheckPII, fmt.Sprintf("getOrder %s failed: %s", id, oneLine(err)), "check SPAPI_ENDPOINT and SPAPI_MARKETPLACE_IDS; pass -order with an order of the seller")
	}
	name := o.Buyer != nil && o.Buyer.BuyerName != ""
	address := o.Recipient != nil && o.Recipient.DeliveryAddress != nil && o.Recipient.DeliveryAddress.AddressLine1 != ""
	marketplace := ""
	if o.SalesChannel != nil {
		marketplace = o.SalesChannel.MarketplaceID
	}
	present := fmt.Sprintf("getOrder %s (marketplace %s) with includedData BUYER,RECIPIENT: buyer name %s, delivery address %s",
		id, marketplace, presence(name), presence(address))
	if name && address {
		return ok(CheckPII, present)
	}
	if marketplace != "" && !slices.Contains(cfg.MarketplaceIDs, marketplace) {
		return fail(CheckPII, present+"; the order is in a marketplace not in SPAPI_MARKETPLACE_IDS",
			"add "+marketplace+" to SPAPI_MARKETPLACE_IDS only if the seller is authorised there, or check an order of "+strings.Join(cfg.MarketplaceIDs, ","))
	}
	if o.Fulfillment != nil && o.Fulfillment.FulfilledBy == "AMAZON" && name && !address {
		return warn(CheckPII, present+"; the order is fulfilled by Amazon, whose delivery address sellers do not get",
			"nothing to fix for Amazon-fulfilled orders; check a merchant-fulfilled order with -order")
	}
	var fix []string
	if !address {
		fix = append(fix, "the delivery address needs the restricted role Direct-to-Consumer Shipping")
	}
	if !name {
		fix = append(fix, "the buyer name needs the restricted role Tax Invoicing (for VAT invoices)")
	}
	return fail(CheckPII, present+"; Orders v2026-01-01 needs no Restricted Data Token, so the roles are missing",
		strings.Join(fix, "; ")+": request them in Solution Provider Portal (Develop Apps > Edit App > roles, after Amazon's restricted-data review), then have the seller authorise the application again and set the new LWA_REFRESH_TOKEN")
}

func presence(b bool) string {
	if b {
		return "present"
	}
	return "ABSENT"
}

func roleFix(err error, why string) string {
	var apiErr *spapi.Error
	if errors.As(err, &apiErr) && apiErr.StatusCode == 403 {
		return why + " (SP-API answered 403 Unauthorized)"
	}
	return why
}
