package workflows

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/plusranger/dpp/internal/actor"
)

// Certificates, the evidence log and histories are kept for years and never
// purged, so nothing a person types goes there as free text: reasons are codes
// from the lists below, "by" is an identifier of a configured operator
// (DPP_OPERATORS) or a system name, and the optional note is sealed with the
// order's PII and erased with it.

// Legal-hold reasons (legal-hold's "reason").
const (
	HoldLitigation       = "litigation"        // a claim or court proceedings
	HoldRegulatorEnquiry = "regulator-enquiry" // the ICO or another regulator
	HoldTaxEnquiry       = "tax-enquiry"       // HMRC
	HoldLawEnforcement   = "law-enforcement"   // a police or court order
	HoldAmazonRequest    = "amazon-request"    // Amazon asks to keep the data
	HoldDispute          = "dispute"           // A-to-z claim, chargeback, return dispute
	HoldSecurityIncident = "security-incident" // kept as evidence of an incident
	HoldBuyerRequest     = "buyer-request"     // the buyer asks for restriction
	HoldOperator         = "operator-held"     // an operator holds it while a mistake is checked
)

// Purge-now reasons (purge-now's "reason").
const (
	PurgeNowAmazonRequest    = "amazon-deletion-request" // Amazon's request: within 30 days
	PurgeNowBuyerErasure     = "buyer-erasure-request"   // UK GDPR art. 17
	PurgeNowSecurityIncident = "security-incident"       // containment after an incident
	PurgeNowNotNeeded        = "no-longer-needed"        // e.g. fulfilled early, nothing left to do
	PurgeNowOperator         = "operator-correction"     // fetched by mistake
)

// Cancellation reasons (cancelled's "reason"; optional).
const (
	CancelOnAmazon = "cancelled-on-amazon" // OrderSync saw Amazon's CANCELED status
	CancelBuyer    = "buyer-cancelled"
	CancelSeller   = "seller-cancelled"
)

// HoldReasons, PurgeNowReasons and CancelReasons are the accepted codes.
var (
	HoldReasons = []string{HoldLitigation, HoldRegulatorEnquiry, HoldTaxEnquiry, HoldLawEnforcement,
		HoldAmazonRequest, HoldDispute, HoldSecurityIncident, HoldBuyerRequest, HoldOperator}
	PurgeNowReasons = []string{PurgeNowAmazonRequest, PurgeNowBuyerErasure, PurgeNowSecurityIncident,
		PurgeNowNotNeeded, PurgeNowOperator}
	CancelReasons = []string{CancelOnAmazon, CancelBuyer, CancelSeller}
)

// SystemActors are the names the system signs as (internal/actor); operators
// may not take them.
var SystemActors = actor.System

// Length limits of signal fields.
const (
	MaxCodeLength = 64
	MaxByLength   = actor.MaxLength
	// MaxNoteLength bounds the optional note, in characters.
	MaxNoteLength = 280
)

// checkCode names field when v is not one of codes.
func checkCode(field, v string, codes []string) error {
	if !slices.Contains(codes, v) {
		return fmt.Errorf("field %q must be one of: %s", field, strings.Join(codes, ", "))
	}
	return nil
}

// checkBy names "by" when it is not in the form of an operator identifier.
func checkBy(by string) error {
	if err := actor.Valid(by); err != nil {
		return fmt.Errorf(`field "by" %v`, err)
	}
	return nil
}

func checkNote(note string) error {
	if utf8.RuneCountInString(note) > MaxNoteLength {
		return fmt.Errorf(`field "note" is longer than %d characters`, MaxNoteLength)
	}
	return nil
}
