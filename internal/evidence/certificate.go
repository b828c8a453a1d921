package evidence

import "time"

// KindCertificate is the evidence kind of a certificate of sanitization.
const KindCertificate = "certificate-of-sanitization"

// NIST SP 800-88 sanitization categories and the method this project uses.
const (
	MethodTypeClear   = "Clear"
	MethodTypePurge   = "Purge"
	MethodTypeDestroy = "Destroy"

	MethodCryptographicErase = "Cryptographic Erase"
)

// Certificate is the body of a certificate of sanitization, with the fields of
// NIST SP 800-88 Rev. 1 Appendix G. The Ed25519 signature of the evidence entry
// that carries it stands for the signature of the person performing.
//
// It must never contain PII: only order ids, counts, key references and hashes.
// The people named are the operator (or service identity) performing and the
// person validating, not buyers.
type Certificate struct {
	PersonPerforming Person       `json:"personPerforming"`
	Media            Media        `json:"media"`
	Sanitization     Sanitization `json:"sanitization"`
	// Destination of the media after sanitization, e.g. "Reused (data keys
	// destroyed; storage remains in service)".
	Destination string     `json:"destination"`
	SignedAt    time.Time  `json:"signedAt"`
	Validation  Validation `json:"validation"`
}

// Person is the person (or service identity) performing the sanitization.
type Person struct {
	Name         string `json:"name"`
	Title        string `json:"title"`
	Organisation string `json:"organisation"`
	Location     string `json:"location"`
	Contact      string `json:"contact"`
}

// Media describes what was sanitized; for a Cryptographic Erase, the sealed
// records of an order and their data keys.
type Media struct {
	MakeVendor     string `json:"makeVendor"`
	Model          string `json:"model"`
	SerialNumber   string `json:"serialNumber"`   // e.g. the data key reference
	PropertyNumber string `json:"propertyNumber"` // e.g. the order id
	MediaType      string `json:"mediaType"`
	Source         string `json:"source"`
	Classification string `json:"classification"`
	DataBackedUp   bool   `json:"dataBackedUp"`
	BackupLocation string `json:"backupLocation"`
}

// Sanitization describes how the media was sanitized and verified.
type Sanitization struct {
	MethodType                     string `json:"methodType"` // MethodTypePurge
	MethodUsed                     string `json:"methodUsed"` // MethodCryptographicErase
	Details                        string `json:"details"`
	Tool                           string `json:"tool"`
	ToolVersion                    string `json:"toolVersion"`
	VerificationMethod             string `json:"verificationMethod"`
	VerificationResult             string `json:"verificationResult"`
	PostSanitizationClassification string `json:"postSanitizationClassification"`
	Notes                          string `json:"notes"`
}

// Validation is the second person's confirmation; empty until someone validates.
type Validation struct {
	Name         string    `json:"name"`
	Title        string    `json:"title"`
	Organisation string    `json:"organisation"`
	Date         time.Time `json:"date,omitzero"`
	Note         string    `json:"note"`
}
