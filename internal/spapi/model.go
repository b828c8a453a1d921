package spapi

import (
	"fmt"
	"time"
)

// Values of the model's enumerations and well-known strings that the system uses.
const (
	// Datasets for the includedData parameter of searchOrders and getOrder.
	IncludeBuyer        = "BUYER"
	IncludeRecipient    = "RECIPIENT"
	IncludeProceeds     = "PROCEEDS"
	IncludeExpense      = "EXPENSE"
	IncludePromotion    = "PROMOTION"
	IncludeCancellation = "CANCELLATION"
	IncludeFulfillment  = "FULFILLMENT"
	IncludePackages     = "PACKAGES"
	IncludeTax          = "TAX"
	IncludePayment      = "PAYMENT"

	// Order fulfillment statuses (FulfillmentStatus).
	StatusPendingAvailability = "PENDING_AVAILABILITY"
	StatusPending             = "PENDING"
	StatusUnshipped           = "UNSHIPPED"
	StatusPartiallyShipped    = "PARTIALLY_SHIPPED"
	StatusShipped             = "SHIPPED"
	StatusCancelled           = "CANCELLED"
	StatusUnfulfillable       = "UNFULFILLABLE"

	// Package statuses (PackageStatus.status).
	PackagePending       = "PENDING"
	PackageInTransit     = "IN_TRANSIT"
	PackageShipped       = "SHIPPED"
	PackageDelivered     = "DELIVERED"
	PackageCancelled     = "CANCELLED"
	PackageUndeliverable = "UNDELIVERABLE"

	// ProgramAmazonBusiness marks an Amazon Business (B2B) order in Order.Programs.
	ProgramAmazonBusiness = "AMAZON_BUSINESS"

	// Tax registration entity and registration types.
	EntityBuyer             = "BUYER"
	EntityMerchant          = "MERCHANT"
	EntityMarketplace       = "MARKETPLACE"
	TaxRegistrationBusiness = "BUSINESS"
	TaxRegistrationVAT      = "VAT"

	// MarketplaceUK is the Amazon.co.uk marketplace ID.
	MarketplaceUK = "A1F83G8C2ARO7P"
)

// SearchOrdersResponse is one page of searchOrders results.
type SearchOrdersResponse struct {
	// Orders on this page, sorted as Amazon returns them.
	Orders []Order `json:"orders"`
	// Pagination holds the token for the next page; nil on the last page.
	Pagination *Pagination `json:"pagination,omitempty"`
	// LastUpdatedBefore is the upper bound Amazon applied when the query used
	// lastUpdatedAfter; use it as the next sync watermark.
	LastUpdatedBefore Time `json:"lastUpdatedBefore,omitzero"`
	// CreatedBefore is the upper bound Amazon applied when the query used
	// createdAfter.
	CreatedBefore Time `json:"createdBefore,omitzero"`
	// Rejected lists the orders of the page that Client.SearchOrders could not
	// decode or that failed Order.Validate; they are not in Orders.
	Rejected []RejectedOrder `json:"-"`
}

// NextToken returns the token for the next page, or "" on the last page.
func (r *SearchOrdersResponse) NextToken() string {
	if r == nil || r.Pagination == nil {
		return ""
	}
	return r.Pagination.NextToken
}

// Pagination carries the token for the next page of results.
type Pagination struct {
	NextToken string `json:"nextToken,omitempty"`
}

// GetOrderResponse is the body of a getOrder response.
type GetOrderResponse struct {
	Order *Order `json:"order"`
}

// Order is an Amazon order (model definition Order). Nested objects that the
// model marks optional, or that only come with an includedData dataset, are
// pointers and nil when absent.
type Order struct {
	OrderID         string   `json:"orderId"`
	OrderAliases    []Alias  `json:"orderAliases,omitempty"`
	CreatedTime     Time     `json:"createdTime,omitzero"`
	LastUpdatedTime Time     `json:"lastUpdatedTime,omitzero"`
	Programs        []string `json:"programs,omitempty"`
	// SalesChannel is required by the model (Validate reports it missing).
	SalesChannel *SalesChannel `json:"salesChannel,omitempty"`
	// Buyer comes with includedData BUYER. PII.
	Buyer *Buyer `json:"buyer,omitempty"`
	// Recipient comes with includedData RECIPIENT. PII.
	Recipient *Recipient `json:"recipient,omitempty"`
	// Proceeds comes with includedData PROCEEDS.
	Proceeds *OrderProceeds `json:"proceeds,omitempty"`
	// Tax comes with includedData TAX. May contain PII (buyer registrations).
	Tax *OrderTax `json:"tax,omitempty"`
	// Fulfillment comes with includedData FULFILLMENT.
	Fulfillment *OrderFulfillment `json:"fulfillment,omitempty"`
	// OrderItems is required by the model.
	OrderItems []OrderItem `json:"orderItems"`
	// Packages comes with includedData PACKAGES (seller-fulfilled orders).
	Packages []OrderPackage `json:"packages,omitempty"`
}

// Alias is another identifier of the same order (e.g. a seller order ID).
type Alias struct {
	AliasID   string `json:"aliasId"`
	AliasType string `json:"aliasType"`
}

// SalesChannel says where the order was placed.
type SalesChannel struct {
	ChannelName     string `json:"channelName"`
	MarketplaceID   string `json:"marketplaceId,omitempty"`
	MarketplaceName string `json:"marketplaceName,omitempty"`
}

// The PII-bearing types, and the types that hold them by value, implement
// fmt.Formatter so that printing them with any verb shows no PII.

// Buyer is the buyer's information (includedData BUYER). Every field is PII.
type Buyer struct {
	BuyerName                string `json:"buyerName,omitempty"`
	BuyerEmail               string `json:"buyerEmail,omitempty"`
	BuyerCompanyName         string `json:"buyerCompanyName,omitempty"`
	BuyerPurchaseOrderNumber string `json:"buyerPurchaseOrderNumber,omitempty"`
}

// Format prints a redacted placeholder so that buyer PII never reaches a log
// line or error message through fmt.
func (Buyer) Format(f fmt.State, _ rune) { redacted(f, "Buyer") }

// Recipient is the delivery recipient (includedData RECIPIENT).
type Recipient struct {
	DeliveryAddress *CustomerAddress `json:"deliveryAddress,omitempty"`
}

// CustomerAddress is a buyer's address. Every field may be PII.
type CustomerAddress struct {
	Name             string                 `json:"name,omitempty"`
	CompanyName      string                 `json:"companyName,omitempty"`
	AddressLine1     string                 `json:"addressLine1,omitempty"`
	AddressLine2     string                 `json:"addressLine2,omitempty"`
	AddressLine3     string                 `json:"addressLine3,omitempty"`
	City             string                 `json:"city,omitempty"`
	DistrictOrCounty string                 `json:"districtOrCounty,omitempty"`
	StateOrRegion    string                 `json:"stateOrRegion,omitempty"`
	Municipality     string                 `json:"municipality,omitempty"`
	PostalCode       string                 `json:"postalCode,omitempty"`
	CountryCode      string                 `json:"countryCode,omitempty"`
	Phone            string                 `json:"phone,omitempty"`
	ExtendedFields   *AddressExtendedFields `json:"extendedFields,omitempty"`
	// AddressType is RESIDENTIAL, COMMERCIAL or PICKUP_POINT.
	AddressType string `json:"addressType,omitempty"`
}

// Format prints a redacted placeholder (see Buyer.Format).
func (CustomerAddress) Format(f fmt.State, _ rune) { redacted(f, "CustomerAddress") }

// AddressExtendedFields holds the parsed street parts some marketplaces return.
type AddressExtendedFields struct {
	StreetName   string `json:"streetName,omitempty"`
	StreetNumber string `json:"streetNumber,omitempty"`
	Complement   string `json:"complement,omitempty"`
	Neighborhood string `json:"neighborhood,omitempty"`
}

// Format prints a redacted placeholder (see Buyer.Format).
func (AddressExtendedFields) Format(f fmt.State, _ rune) { redacted(f, "AddressExtendedFields") }

// OrderProceeds is the money the seller receives for the order.
type OrderProceeds struct {
	GrandTotal *Money                   `json:"grandTotal,omitempty"`
	Breakdowns []OrderProceedsBreakdown `json:"breakdowns,omitempty"`
}

// OrderProceedsBreakdown is one category of the order's proceeds.
type OrderProceedsBreakdown struct {
	Type     string `json:"type"`
	Status   string `json:"status,omitempty"`
	Subtotal *Money `json:"subtotal,omitempty"`
}

// OrderFulfillment is the order's fulfillment state and promise windows.
type OrderFulfillment struct {
	// FulfillmentStatus is one of the Status* constants; required by the model.
	FulfillmentStatus string `json:"fulfillmentStatus"`
	// FulfilledBy is MERCHANT or AMAZON.
	FulfilledBy             string         `json:"fulfilledBy,omitempty"`
	FulfillmentServiceLevel string         `json:"fulfillmentServiceLevel,omitempty"`
	ShipByWindow            *DateTimeRange `json:"shipByWindow,omitempty"`
	DeliverByWindow         *DateTimeRange `json:"deliverByWindow,omitempty"`
}

// DateTimeRange is a time window; either end may be absent (zero).
type DateTimeRange struct {
	EarliestDateTime Time `json:"earliestDateTime,omitzero"`
	LatestDateTime   Time `json:"latestDateTime,omitzero"`
}

// OrderItem is one line of the order.
type OrderItem struct {
	OrderItemID string `json:"orderItemId"`
	// QuantityOrdered is required by the model; a pointer so that a missing
	// value is told apart from zero. Use Quantity for the value.
	QuantityOrdered *int         `json:"quantityOrdered,omitempty"`
	Programs        []string     `json:"programs,omitempty"`
	Product         *ItemProduct `json:"product,omitempty"`
	// Proceeds comes with includedData PROCEEDS.
	Proceeds *ItemProceeds `json:"proceeds,omitempty"`
	// Fulfillment comes with includedData FULFILLMENT.
	Fulfillment *ItemFulfillment `json:"fulfillment,omitempty"`
	// Tax tells who collects the item's VAT (TAX dataset).
	Tax *ItemTax `json:"tax,omitempty"`
	// Cancellation comes with includedData CANCELLATION: the item was
	// cancelled (cancellationExecution) or its cancellation requested.
	Cancellation *ItemCancellation `json:"cancellation,omitempty"`
}

// ItemCancellation is an item's cancellation. Its reasons are Amazon's or the
// buyer's free text: never kept, only whether it was executed.
type ItemCancellation struct {
	CancellationRequest   *ItemCancellationRequest   `json:"cancellationRequest,omitempty"`
	CancellationExecution *ItemCancellationExecution `json:"cancellationExecution,omitempty"`
}

// ItemCancellationRequest is a cancellation asked for (by the buyer).
type ItemCancellationRequest struct {
	Requester    string `json:"requester,omitempty"`
	CancelReason string `json:"cancelReason,omitempty"`
}

// ItemCancellationExecution is a cancellation carried out, and by whom
// (BUYER, MERCHANT, AMAZON).
type ItemCancellationExecution struct {
	CancelledBy  string `json:"cancelledBy,omitempty"`
	CancelReason string `json:"cancelReason,omitempty"`
}

// Cancelled reports whether the item's cancellation was carried out.
func (it *OrderItem) Cancelled() bool {
	return it != nil && it.Cancellation != nil && it.Cancellation.CancellationExecution != nil
}

// Quantity returns QuantityOrdered, or 0 when it is absent.
func (it *OrderItem) Quantity() int {
	if it == nil || it.QuantityOrdered == nil {
		return 0
	}
	return *it.QuantityOrdered
}

// ItemProduct describes the product of an order item.
type ItemProduct struct {
	ASIN          string         `json:"asin,omitempty"`
	Title         string         `json:"title,omitempty"`
	SellerSKU     string         `json:"sellerSku,omitempty"`
	Condition     *ItemCondition `json:"condition,omitempty"`
	Price         *ItemPrice     `json:"price,omitempty"`
	SerialNumbers []string       `json:"serialNumbers,omitempty"`
}

// ItemCondition is the condition of the item sold.
type ItemCondition struct {
	ConditionType    string `json:"conditionType,omitempty"`
	ConditionSubtype string `json:"conditionSubtype,omitempty"`
	ConditionNote    string `json:"conditionNote,omitempty"`
}

// ItemPrice is the price of one unit. In the UK marketplace it includes VAT.
type ItemPrice struct {
	UnitPrice        *Money `json:"unitPrice,omitempty"`
	PriceDesignation string `json:"priceDesignation,omitempty"`
}

// ItemProceeds is what the seller receives for one order item.
type ItemProceeds struct {
	ProceedsTotal *Money                  `json:"proceedsTotal,omitempty"`
	Breakdowns    []ItemProceedsBreakdown `json:"breakdowns,omitempty"`
}

// ItemProceedsBreakdown is one category (ITEM, SHIPPING, TAX, ...) of an item's proceeds.
type ItemProceedsBreakdown struct {
	Type               string                          `json:"type"`
	Subtotal           *Money                          `json:"subtotal,omitempty"`
	DetailedBreakdowns []ItemProceedsDetailedBreakdown `json:"detailedBreakdowns,omitempty"`
}

// ItemProceedsDetailedBreakdown splits a TAX or DISCOUNT breakdown further.
type ItemProceedsDetailedBreakdown struct {
	Subtype string `json:"subtype,omitempty"`
	Value   *Money `json:"value,omitempty"`
}

// ItemFulfillment is the fulfillment state of one order item.
type ItemFulfillment struct {
	QuantityFulfilled   *int         `json:"quantityFulfilled,omitempty"`
	QuantityUnfulfilled *int         `json:"quantityUnfulfilled,omitempty"`
	Packing             *ItemPacking `json:"packing,omitempty"`
}

// ItemPacking holds packing instructions for an item.
type ItemPacking struct {
	GiftOption *GiftOption `json:"giftOption,omitempty"`
}

// GiftOption is the buyer's gift wrap and message. GiftMessage is PII.
type GiftOption struct {
	GiftMessage   string `json:"giftMessage,omitempty"`
	GiftWrapLevel string `json:"giftWrapLevel,omitempty"`
}

// Format prints a redacted placeholder (see Buyer.Format).
func (GiftOption) Format(f fmt.State, _ rune) { redacted(f, "GiftOption") }

// OrderPackage is a package shipped for the order (includedData PACKAGES).
type OrderPackage struct {
	// PackageReferenceID is required by the model.
	PackageReferenceID string         `json:"packageReferenceId"`
	CreatedTime        Time           `json:"createdTime,omitzero"`
	PackageStatus      *PackageStatus `json:"packageStatus,omitempty"`
	Carrier            string         `json:"carrier,omitempty"`
	ShipTime           Time           `json:"shipTime,omitzero"`
	ShippingService    string         `json:"shippingService,omitempty"`
	TrackingNumber     string         `json:"trackingNumber,omitempty"`
}

// PackageStatus is a package's tracking state.
type PackageStatus struct {
	// Status is one of the Package* constants; required by the model.
	Status         string `json:"status"`
	DetailedStatus string `json:"detailedStatus,omitempty"`
}

// OrderTax is the order's tax information (includedData TAX).
type OrderTax struct {
	TaxRegistrations []OrderTaxRegistration `json:"taxRegistrations,omitempty"`
}

// OrderTaxRegistration is the tax registration of the buyer, the merchant or
// the marketplace. A buyer's registration is PII.
type OrderTaxRegistration struct {
	// EntityType is BUYER, MERCHANT or MARKETPLACE.
	EntityType string `json:"entityType,omitempty"`
	LegalName  string `json:"legalName,omitempty"`
	// TaxRegistrationType is BUSINESS, VAT, CST, CPF or CNPJ.
	TaxRegistrationType    string           `json:"taxRegistrationType,omitempty"`
	TaxRegistrationNumber  string           `json:"taxRegistrationNumber,omitempty"`
	TaxRegistrationAddress *CustomerAddress `json:"taxRegistrationAddress,omitempty"`
}

// Format prints a redacted placeholder (see Buyer.Format).
func (OrderTaxRegistration) Format(f fmt.State, _ rune) { redacted(f, "OrderTaxRegistration") }

// Money is an amount in a currency. Amount is kept as the exact decimal string.
type Money struct {
	Amount       Decimal `json:"amount"`
	CurrencyCode string  `json:"currencyCode"`
}

// Format prints a summary without PII: orderId, times, fulfillment status and
// the number of items. (Printing an Order with fmt never reveals its buyer.)
func (o Order) Format(f fmt.State, _ rune) {
	status := ""
	if o.Fulfillment != nil {
		status = o.Fulfillment.FulfillmentStatus
	}
	_, _ = fmt.Fprintf(f, "spapi.Order{orderId:%s createdTime:%s lastUpdatedTime:%s status:%s items:%d [PII redacted]}",
		o.OrderID, o.CreatedTime.Format(time.RFC3339), o.LastUpdatedTime.Format(time.RFC3339), status, len(o.OrderItems))
}

// Format prints a redacted placeholder (see Buyer.Format).
func (Recipient) Format(f fmt.State, _ rune) { redacted(f, "Recipient") }

// Format prints a redacted placeholder (see Buyer.Format).
func (OrderTax) Format(f fmt.State, _ rune) { redacted(f, "OrderTax") }

// Format prints a redacted placeholder (it may hold a gift message).
func (ItemFulfillment) Format(f fmt.State, _ rune) { redacted(f, "ItemFulfillment") }

// Format prints a redacted placeholder (it may hold a gift message).
func (ItemPacking) Format(f fmt.State, _ rune) { redacted(f, "ItemPacking") }

func redacted(f fmt.State, typ string) {
	_, _ = fmt.Fprintf(f, "spapi.%s[redacted]", typ)
}

// ItemTax is an item's tax information; only the collection model is used.
type ItemTax struct {
	TaxCollections []ItemTaxCollection `json:"taxCollections,omitempty"`
}

// ItemTaxCollection says who withholds and remits the item's tax.
type ItemTaxCollection struct {
	// Model is MARKETPLACE_FACILITATOR when Amazon collects the tax as the deemed supplier.
	Model            string `json:"model,omitempty"`
	ResponsibleParty string `json:"responsibleParty,omitempty"`
}

// TaxModelMarketplaceFacilitator: Amazon is the deemed supplier and invoices the
// buyer; the seller issues no VAT invoice.
const TaxModelMarketplaceFacilitator = "MARKETPLACE_FACILITATOR"

// MarketplaceFacilitated reports whether Amazon collects the VAT on every item,
// as the deemed supplier (UK: imports up to GBP 135, overseas sellers' UK stock).
func (o *Order) MarketplaceFacilitated() bool {
	if len(o.OrderItems) == 0 {
		return false
	}
	for _, it := range o.OrderItems {
		mf := false
		if it.Tax != nil {
			for _, c := range it.Tax.TaxCollections {
				mf = mf || c.Model == TaxModelMarketplaceFacilitator
			}
		}
		if !mf {
			return false
		}
	}
	return true
}
