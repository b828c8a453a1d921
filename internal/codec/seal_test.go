package codec

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

// sealForTest encrypts body (already compressed as compression says) under c's
// current data key exactly as the encoder does, so tests can build payloads the
// encoder would refuse to write.
func sealForTest(t testing.TB, c *Codec, body []byte, compression string) *commonpb.Payload {
	t.Helper()
	p, err := c.seal(body, compression)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
