package sandbox

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/plusranger/dpp/internal/spapi"
)

// product is an entry of the fixed catalogue generated orders draw from.
// Prices are VAT-inclusive GBP (20% standard rate), in pence.
type product struct {
	sku, asin, title string
	pence            int64
}

// cheapProducts keep an order of up to three lines under GBP 250 in total;
// dearProducts alone take an order over GBP 250.
var (
	cheapProducts = []product{
		{"PR-KETTLE-01", "B0CPRK7L01", "Plusranger 1.7L Rapid Boil Cordless Kettle, Brushed Steel", 3499},
		{"PR-TOASTER-02", "B0CPRT0S02", "Plusranger 2-Slice Wide Slot Toaster with Defrost, Cream", 2999},
		{"PR-LAMP-03", "B0CPRL4M03", "Plusranger LED Desk Lamp with USB-C Charging Port, Dimmable", 2499},
		{"PR-MUGSET-04", "B0CPRM6S04", "Plusranger Stoneware Mug Set of 4, 350ml, Sage Green", 1999},
		{"PR-FAN-05", "B0CPRF4N05", "Plusranger 16-inch Pedestal Fan, 3 Speeds, Oscillating", 4499},
		{"PR-SCALES-06", "B0CPRS5C06", "Plusranger Digital Kitchen Scales, 5kg, Stainless Steel", 1499},
		{"PR-AIRFRY-07", "B0CPRA1R07", "Plusranger 4.5L Air Fryer, 1500W, Non-Stick Basket", 6999},
		{"PR-BLENDER-08", "B0CPRB1D08", "Plusranger Personal Blender with 2 Travel Bottles, 300W", 2750},
		{"PR-IRON-09", "B0CPR1R0N9", "Plusranger Steam Iron 2600W, Ceramic Soleplate", 3200},
		{"PR-BOTTLE-10", "B0CPRB0T10", "Plusranger Insulated Water Bottle 750ml, Midnight Blue", 1695},
		{"PR-HEATER-11", "B0CPRH7R11", "Plusranger 2kW Oil Filled Radiator with Thermostat", 5999},
	}
	dearProducts = []product{
		{"PR-ESPRESSO-20", "B0CPRE5P20", "Plusranger Bean-to-Cup Espresso Machine with Milk Frother", 39900},
		{"PR-MIXER-21", "B0CPRM1X21", "Plusranger 1000W Stand Mixer, 5.5L Bowl, Graphite", 27999},
		{"PR-ROBOVAC-22", "B0CPRR0V22", "Plusranger Robot Vacuum Cleaner with Self-Empty Station", 32900},
	}

	firstNames = []string{"Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Noah",
		"Grace", "Arthur", "Freya", "Thomas", "Poppy", "Alfie", "Evie", "Rhys", "Siobhan", "Callum", "Priya"}
	surnames = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas",
		"Roberts", "Walker", "Wright", "Hughes", "Patel", "Khan", "Campbell", "Murphy", "Edwards", "Clarke"}
	streets = []string{"Willow Close", "Station Road", "Church Lane", "Victoria Street", "Mill Lane",
		"Park Avenue", "Queens Road", "High Street", "The Crescent", "Orchard Way", "Manor Drive"}
	places = []struct{ city, outward, county string }{
		{"Leeds", "LS6", "West Yorkshire"}, {"Bristol", "BS7", "Bristol"},
		{"Manchester", "M20", "Greater Manchester"}, {"Norwich", "NR2", "Norfolk"},
		{"Cardiff", "CF24", "South Glamorgan"}, {"Edinburgh", "EH10", "Midlothian"},
		{"Brighton", "BN1", "East Sussex"}, {"York", "YO31", "North Yorkshire"},
		{"Nottingham", "NG7", "Nottinghamshire"}, {"Belfast", "BT9", "County Antrim"},
		{"London", "SE22", "Greater London"}, {"Exeter", "EX4", "Devon"},
	}
	companies = []string{"Harrow Precision Engineering Ltd", "Northgate Dental Practice", "Bluebell Cafe Ltd",
		"Kestrel Joinery Ltd", "Oakfield Primary School", "Tidewater Marine Services Ltd", "Greenleaf Lettings LLP"}
	giftMessages = []string{"Happy birthday! Lots of love, %s x", "Congratulations on the new house! From %s",
		"Merry Christmas from all of us, %s", "Get well soon, thinking of you. %s", "Happy anniversary! Love, %s"}
)

const (
	marketplaceName = "Amazon.co.uk"
	currencyGBP     = "GBP"
	emailDomain     = "@marketplace.amazon.co.uk"
	// postcodeLetters are the letters allowed in the inward code of a UK postcode.
	postcodeLetters = "ABDEFGHJLNPQRSTUWXYZ"
)

// genOrder is a generated order: its fixed content plus the events that
// change its state. The state at a time t is derived by view(t).
type genOrder struct {
	base        spapi.Order // all datasets; fulfillment state fields filled by view
	created     time.Time
	cancelledAt time.Time // zero unless cancelled
	// itemsCancelledAt: items cancelled on their own (CancelItem), by order item id.
	itemsCancelledAt map[string]time.Time
	deliveredAt      time.Time // set by Deliver; zero: DeliveryAfter after creation
	corrupt          string    // CorruptOrder mode for getOrder ("" = none)
	corruptList      string    // CorruptInSearch mode for searchOrders ("" = none)
	tracking         string
}

// pii appends the marker to a PII string when one is configured.
func (s *Server) pii(v string) string {
	if s.opts.Marker == "" {
		return v
	}
	return v + " " + s.opts.Marker
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

// newOrderID returns an Amazon-style 3-7-7 digit order ID, unique on the server.
// Caller holds s.mu.
func (s *Server) newOrderID() string {
	for {
		id := fmt.Sprintf("20%d-%s-%s", 2+s.rng.IntN(5), digits(s.rng, 7), digits(s.rng, 7))
		if _, taken := s.orders[id]; !taken && !s.staticOrderIDs[id] {
			return id
		}
	}
}

// gbVATNumber returns a GB VAT registration number with a valid check
// (the 97-modulus scheme).
func gbVATNumber(r *rand.Rand) string {
	d := make([]int, 7)
	sum := 0
	for i := range d {
		d[i] = r.IntN(10)
		sum += d[i] * (8 - i)
	}
	check := (97 - sum%97) % 97
	var b strings.Builder
	b.WriteString("GB")
	for _, x := range d {
		b.WriteByte(byte('0' + x))
	}
	fmt.Fprintf(&b, "%02d", check)
	return b.String()
}

func money(pence int64) *spapi.Money {
	return &spapi.Money{Amount: spapi.MinorToDecimal(pence), CurrencyCode: currencyGBP}
}

// generate builds one order created at now. Caller holds s.mu.
func (s *Server) generate(now time.Time) *genOrder {
	r := s.rng
	id := s.newOrderID()
	created := now.UTC().Truncate(time.Second)

	// Items: ~15% of orders include one item over GBP 250.
	var lines []product
	if r.Float64() < 0.15 {
		lines = append(lines, pick(r, dearProducts))
		if r.IntN(2) == 0 {
			lines = append(lines, pick(r, cheapProducts))
		}
	} else {
		perm := r.Perm(len(cheapProducts))
		for _, i := range perm[:1+r.IntN(3)] {
			lines = append(lines, cheapProducts[i])
		}
	}

	first, last := pick(r, firstNames), pick(r, surnames)
	place := pick(r, places)
	business := r.Float64() < 0.10
	gift := r.Float64() < 0.15

	postcode := fmt.Sprintf("%s %d%c%c", place.outward, r.IntN(10),
		postcodeLetters[r.IntN(len(postcodeLetters))], postcodeLetters[r.IntN(len(postcodeLetters))])
	address := &spapi.CustomerAddress{
		Name:          s.pii(first + " " + last),
		AddressLine1:  s.pii(fmt.Sprintf("%d %s", 1+r.IntN(180), pick(r, streets))),
		City:          place.city,
		StateOrRegion: place.county,
		PostalCode:    postcode,
		CountryCode:   "GB",
		Phone:         s.pii(fmt.Sprintf("+44 7700 900%03d", r.IntN(1000))),
		AddressType:   "RESIDENTIAL",
	}
	if r.IntN(10) < 3 {
		address.AddressLine2 = s.pii(fmt.Sprintf("Flat %d", 1+r.IntN(30)))
	}

	local := make([]byte, 16)
	for i := range local {
		local[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)]
	}
	buyer := &spapi.Buyer{
		BuyerName:  s.pii(first + " " + last),
		BuyerEmail: string(local) + s.opts.Marker + emailDomain,
	}

	o := spapi.Order{
		OrderID:     id,
		CreatedTime: spapi.NewTime(created),
		SalesChannel: &spapi.SalesChannel{
			ChannelName:     "AMAZON",
			MarketplaceID:   spapi.MarketplaceUK,
			MarketplaceName: marketplaceName,
		},
		Buyer:     buyer,
		Recipient: &spapi.Recipient{DeliveryAddress: address},
	}
	if business {
		company := companies[r.IntN(len(companies))]
		o.Programs = []string{spapi.ProgramAmazonBusiness}
		buyer.BuyerCompanyName = s.pii(company)
		buyer.BuyerPurchaseOrderNumber = s.pii("PO-" + digits(r, 6))
		address.CompanyName = s.pii(company)
		address.AddressType = "COMMERCIAL"
		taxAddress := *address
		o.Tax = &spapi.OrderTax{TaxRegistrations: []spapi.OrderTaxRegistration{{
			EntityType:             spapi.EntityBuyer,
			LegalName:              s.pii(company),
			TaxRegistrationType:    spapi.TaxRegistrationVAT,
			TaxRegistrationNumber:  s.pii(gbVATNumber(r)),
			TaxRegistrationAddress: &taxAddress,
		}}}
	} else if r.IntN(2) == 0 {
		o.Programs = []string{"PRIME"}
	}

	var total int64
	for i, p := range lines {
		qty := 1
		if p.pence < 3000 && r.IntN(5) == 0 {
			qty = 2
		}
		lineTotal := p.pence * int64(qty)
		total += lineTotal
		item := spapi.OrderItem{
			OrderItemID:     digits(r, 14),
			QuantityOrdered: &qty,
			Product: &spapi.ItemProduct{
				ASIN:      p.asin,
				Title:     p.title,
				SellerSKU: p.sku,
				Condition: &spapi.ItemCondition{ConditionType: "NEW", ConditionSubtype: "NEW"},
				Price:     &spapi.ItemPrice{UnitPrice: money(p.pence)},
			},
			Proceeds: &spapi.ItemProceeds{
				ProceedsTotal: money(lineTotal),
				Breakdowns:    []spapi.ItemProceedsBreakdown{{Type: "ITEM", Subtotal: money(lineTotal)}},
			},
			Fulfillment: &spapi.ItemFulfillment{},
		}
		if gift && i == 0 {
			item.Fulfillment.Packing = &spapi.ItemPacking{GiftOption: &spapi.GiftOption{
				GiftMessage:   s.pii(fmt.Sprintf(pick(r, giftMessages), pick(r, firstNames))),
				GiftWrapLevel: "STANDARD",
			}}
		}
		o.OrderItems = append(o.OrderItems, item)
	}
	o.Proceeds = &spapi.OrderProceeds{GrandTotal: money(total)}
	o.Fulfillment = &spapi.OrderFulfillment{
		FulfilledBy:             "MERCHANT",
		FulfillmentServiceLevel: "STANDARD",
		ShipByWindow: &spapi.DateTimeRange{
			EarliestDateTime: spapi.NewTime(created),
			LatestDateTime:   spapi.NewTime(created.Add(s.opts.DeliveryAfter / 2)),
		},
		DeliverByWindow: &spapi.DateTimeRange{
			EarliestDateTime: spapi.NewTime(created.Add(s.opts.LatestDeliveryAfter / 3)),
			LatestDateTime:   spapi.NewTime(created.Add(s.opts.LatestDeliveryAfter)),
		},
	}
	return &genOrder{
		base:     o,
		created:  created,
		tracking: "JT" + digits(r, 9) + "GB",
	}
}

// view returns the order as Amazon would report it at now, with every
// dataset. Fulfillment state is derived from the clock: UNSHIPPED until
// DeliveryAfter/2 after creation, then SHIPPED with one package IN_TRANSIT,
// which becomes DELIVERED at DeliveryAfter; lastUpdatedTime is the time of the
// latest of these transitions that has happened. A cancelled order is
// CANCELLED, has no packages, and was last updated when it was cancelled.
// The result shares pointers with g's fixed content: do not mutate it (filter
// only replaces fields), and deep-copy it before handing it out.
func (g *genOrder) view(now time.Time, deliveryAfter time.Duration) spapi.Order {
	o := g.base
	o.Fulfillment = new(*g.base.Fulfillment)
	o.OrderItems = make([]spapi.OrderItem, len(g.base.OrderItems))
	copy(o.OrderItems, g.base.OrderItems)

	shippedAt := g.created.Add(deliveryAfter / 2)
	deliveredAt := g.created.Add(deliveryAfter)
	if !g.deliveredAt.IsZero() {
		deliveredAt = g.deliveredAt
		if shippedAt.After(deliveredAt) {
			shippedAt = deliveredAt
		}
	}
	status, pkgStatus, updated := spapi.StatusUnshipped, "", g.created
	switch {
	case !g.cancelledAt.IsZero():
		status, updated = spapi.StatusCancelled, g.cancelledAt
	case !now.Before(deliveredAt):
		status, pkgStatus, updated = spapi.StatusShipped, spapi.PackageDelivered, deliveredAt
	case !now.Before(shippedAt):
		status, pkgStatus, updated = spapi.StatusShipped, spapi.PackageInTransit, shippedAt
	}
	o.LastUpdatedTime = spapi.NewTime(updated)
	o.Fulfillment.FulfillmentStatus = status
	o.Packages = nil
	if pkgStatus != "" {
		detailed := "PICKED_UP"
		if pkgStatus == spapi.PackageDelivered {
			detailed = "DELIVERED"
		}
		o.Packages = []spapi.OrderPackage{{
			PackageReferenceID: "1",
			CreatedTime:        spapi.NewTime(shippedAt),
			PackageStatus:      &spapi.PackageStatus{Status: pkgStatus, DetailedStatus: detailed},
			Carrier:            "Royal Mail",
			ShipTime:           spapi.NewTime(shippedAt),
			ShippingService:    "Tracked 48",
			TrackingNumber:     g.tracking,
		}}
	}
	for i := range o.OrderItems {
		it := &o.OrderItems[i]
		if at, ok := g.itemsCancelledAt[it.OrderItemID]; ok {
			it.Cancellation = &spapi.ItemCancellation{CancellationExecution: &spapi.ItemCancellationExecution{
				CancelledBy: "BUYER", CancelReason: "Ordered by mistake"}}
			if at.After(o.LastUpdatedTime.Time) {
				o.LastUpdatedTime = spapi.NewTime(at)
			}
		}
		f := *it.Fulfillment
		shipped := 0
		if status == spapi.StatusShipped {
			shipped = it.Quantity()
		}
		unshipped := it.Quantity() - shipped
		if status == spapi.StatusCancelled {
			unshipped = 0
		}
		f.QuantityFulfilled, f.QuantityUnfulfilled = &shipped, &unshipped
		it.Fulfillment = &f
	}
	return o
}

// filter keeps only the datasets named in included (the always-present
// fields are orderId, times, programs, salesChannel and orderItems with their
// product). o must not share memory with stored orders (see view).
func filter(o spapi.Order, included map[string]bool) spapi.Order {
	if !included[spapi.IncludeBuyer] {
		o.Buyer = nil
	}
	if !included[spapi.IncludeRecipient] {
		o.Recipient = nil
	}
	if !included[spapi.IncludeProceeds] {
		o.Proceeds = nil
	}
	if !included[spapi.IncludeFulfillment] {
		o.Fulfillment = nil
	}
	if !included[spapi.IncludePackages] {
		o.Packages = nil
	}
	if !included[spapi.IncludeTax] {
		o.Tax = nil
	}
	for i := range o.OrderItems {
		if !included[spapi.IncludeProceeds] {
			o.OrderItems[i].Proceeds = nil
		}
		if !included[spapi.IncludeFulfillment] {
			o.OrderItems[i].Fulfillment = nil
		}
		if !included[spapi.IncludeTax] {
			o.OrderItems[i].Tax = nil
		}
		if !included[spapi.IncludeCancellation] {
			o.OrderItems[i].Cancellation = nil
		}
	}
	return o
}
