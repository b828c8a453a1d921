package orders

import (
	"fmt"

	"github.com/plusranger/dpp/internal/spapi"
)

// Names of sealed PII fields. Each is sealed separately, with its name bound into
// the ciphertext, so a ciphertext cannot be moved to another field or order.
const (
	fieldBuyerName          = "buyer.name"
	fieldBuyerEmail         = "buyer.email"
	fieldBuyerCompany       = "buyer.companyName"
	fieldBuyerPONumber      = "buyer.purchaseOrderNumber"
	prefixRecipient         = "recipient."
	prefixTaxRegistration   = "tax."
	fieldGiftMessagePattern = "items[%d].giftMessage"
)

// piiFields lists every piece of buyer PII in an order, by field name. Empty
// values are left out. Nothing here may reach a log, an error or history.
func piiFields(o *spapi.Order) map[string]string {
	f := map[string]string{}
	put := func(name, v string) {
		if v != "" {
			f[name] = v
		}
	}
	if b := o.Buyer; b != nil {
		put(fieldBuyerName, b.BuyerName)
		put(fieldBuyerEmail, b.BuyerEmail)
		put(fieldBuyerCompany, b.BuyerCompanyName)
		put(fieldBuyerPONumber, b.BuyerPurchaseOrderNumber)
	}
	if r := o.Recipient; r != nil && r.DeliveryAddress != nil {
		putAddress(put, prefixRecipient, r.DeliveryAddress)
	}
	if t := o.Tax; t != nil {
		for i, reg := range t.TaxRegistrations {
			p := fmt.Sprintf("%s%d.", prefixTaxRegistration, i)
			put(p+"entityType", reg.EntityType)
			put(p+"legalName", reg.LegalName)
			put(p+"type", reg.TaxRegistrationType)
			put(p+"number", reg.TaxRegistrationNumber)
			if reg.TaxRegistrationAddress != nil {
				putAddress(put, p+"address.", reg.TaxRegistrationAddress)
			}
		}
	}
	for i, it := range o.OrderItems {
		if it.Fulfillment != nil && it.Fulfillment.Packing != nil && it.Fulfillment.Packing.GiftOption != nil {
			put(fmt.Sprintf(fieldGiftMessagePattern, i), it.Fulfillment.Packing.GiftOption.GiftMessage)
		}
	}
	return f
}

func putAddress(put func(string, string), p string, a *spapi.CustomerAddress) {
	put(p+"name", a.Name)
	put(p+"companyName", a.CompanyName)
	put(p+"addressLine1", a.AddressLine1)
	put(p+"addressLine2", a.AddressLine2)
	put(p+"addressLine3", a.AddressLine3)
	put(p+"city", a.City)
	put(p+"districtOrCounty", a.DistrictOrCounty)
	put(p+"stateOrRegion", a.StateOrRegion)
	put(p+"municipality", a.Municipality)
	put(p+"postalCode", a.PostalCode)
	put(p+"countryCode", a.CountryCode)
	put(p+"phone", a.Phone)
	put(p+"addressType", a.AddressType)
	if e := a.ExtendedFields; e != nil {
		put(p+"streetName", e.StreetName)
		put(p+"streetNumber", e.StreetNumber)
		put(p+"complement", e.Complement)
		put(p+"neighborhood", e.Neighborhood)
	}
}

// addressLines renders a sealed address back into invoice lines, in memory only.
func addressLines(f map[string]string, p string) []string {
	var lines []string
	for _, k := range []string{"companyName", "addressLine1", "addressLine2", "addressLine3", "municipality", "city", "districtOrCounty", "stateOrRegion", "postalCode", "countryCode"} {
		if v := f[p+k]; v != "" {
			lines = append(lines, v)
		}
	}
	return lines
}
