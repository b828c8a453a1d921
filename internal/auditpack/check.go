package auditpack

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/plusranger/dpp/internal/evidence"
)

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// CheckEntries checks evidence.jsonl on its own, as an auditor would without the
// database: each entry's hash is recomputed, linked to the one before (the first
// to prevHash, hex, from verification.json) and its signature checked with the
// pinned keys. It returns how many entries it checked.
func CheckEntries(r io.Reader, prevHash string, keys map[string]ed25519.PublicKey) (int, error) {
	prev, err := hex.DecodeString(prevHash)
	if err != nil {
		return 0, fmt.Errorf("prevHash: %w", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	n := 0
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return n, fmt.Errorf("line %d: %w", n+1, err)
		}
		rec, err := e.Record()
		if err != nil {
			return n, err
		}
		if err := evidence.VerifyRecord(rec, keys[rec.SigningKeyID], prev); err != nil {
			return n, err
		}
		prev = rec.Hash
		n++
	}
	return n, sc.Err()
}
