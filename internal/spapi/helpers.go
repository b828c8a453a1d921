package spapi

import (
	"slices"
	"time"
)

// Cancelled reports whether the order's fulfillment status is CANCELLED. It
// needs the FULFILLMENT dataset; without it the order is reported as not
// cancelled.
func (o *Order) Cancelled() bool {
	return o != nil && o.Fulfillment != nil && o.Fulfillment.FulfillmentStatus == StatusCancelled
}

// DeliveredAt reports whether the order has been delivered and when. It needs
// the PACKAGES dataset. The order counts as delivered when it is not cancelled,
// has at least one package with packageStatus.status DELIVERED, and every
// other package is DELIVERED too (packages whose status is CANCELLED, e.g. a
// voided label, are ignored).
//
// The model has no delivery timestamp on a package, so the time returned is
// the order's lastUpdatedTime: the delivery is the last change Amazon records
// for a delivered order, so lastUpdatedTime is the best available upper bound
// of the delivery time (it may be later than the real delivery if the order
// changed afterwards, which only lengthens a retention period measured from it
// by that difference).
func (o *Order) DeliveredAt() (time.Time, bool) {
	if o == nil || o.Cancelled() {
		return time.Time{}, false
	}
	delivered := 0
	for _, p := range o.Packages {
		status := ""
		if p.PackageStatus != nil {
			status = p.PackageStatus.Status
		}
		switch status {
		case PackageDelivered:
			delivered++
		case PackageCancelled:
		default:
			return time.Time{}, false
		}
	}
	if delivered == 0 || o.LastUpdatedTime.IsZero() {
		return time.Time{}, false
	}
	return o.LastUpdatedTime.Time, true
}

// LatestDeliveryDate returns the end of the delivery promise window
// (fulfillment.deliverByWindow.latestDateTime), if the order has one. It needs
// the FULFILLMENT dataset.
func (o *Order) LatestDeliveryDate() (time.Time, bool) {
	if o == nil || o.Fulfillment == nil || o.Fulfillment.DeliverByWindow == nil {
		return time.Time{}, false
	}
	t := o.Fulfillment.DeliverByWindow.LatestDateTime
	if t.IsZero() {
		return time.Time{}, false
	}
	return t.Time, true
}

// IsBusiness reports whether the order is a business order: its programs
// include AMAZON_BUSINESS, or it carries a BUYER tax registration of type
// BUSINESS (the latter needs the TAX dataset).
func (o *Order) IsBusiness() bool {
	if o == nil {
		return false
	}
	if slices.Contains(o.Programs, ProgramAmazonBusiness) {
		return true
	}
	if o.Tax != nil {
		for _, r := range o.Tax.TaxRegistrations {
			if r.EntityType == EntityBuyer && r.TaxRegistrationType == TaxRegistrationBusiness {
				return true
			}
		}
	}
	return false
}
