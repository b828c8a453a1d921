package invoice

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite internal/invoice/testdata/golden/*.pdf from the current renderer")

// goldenDocs are fixed documents whose rendered bytes are kept in
// testdata/golden: a change of the PDF library or of the renderer that alters
// one byte of them shows here, and is accepted only by rewriting the files
// (go test ./internal/invoice -run TestRenderGolden -update-golden) in the
// same commit, where the diff can be reviewed.
func goldenDocs(t testing.TB) map[string]*Document {
	odd := fixture(t)
	odd.Lines[0].Description = "Tab\tand\nnewline, emoji 😀, Greek αβγ, Cyrillic Жж, euro €"
	latin1 := fixture(t)
	latin1.Customer.Name = "Siân O'Brien-Müller"
	return map[string]*Document{
		"full":        fixture(t),
		"full-cp1252": latin1,
		"simplified":  simplifiedFixture(t),
		"many-lines":  manyLines(t, 80),
		"odd-chars":   odd,
		"credit-note": creditFixture(t),
	}
}

func TestRenderGolden(t *testing.T) {
	for name, d := range goldenDocs(t) {
		t.Run(name, func(t *testing.T) {
			got, err := Render(d)
			require.NoError(t, err)
			path := filepath.Join("testdata", "golden", name+".pdf")
			if *updateGolden {
				require.NoError(t, os.WriteFile(path, got, 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no golden file: run go test ./internal/invoice -run TestRenderGolden -update-golden")
			if !bytes.Equal(got, want) {
				out := filepath.Join(t.TempDir(), name+".pdf")
				_ = os.WriteFile(out, got, 0o644)
				t.Fatalf("%s renders differently from %s (sha256 %x, %d bytes; golden sha256 %x, %d bytes); new output in %s",
					name, path, sha256.Sum256(got), len(got), sha256.Sum256(want), len(want), out)
			}
		})
	}
}
