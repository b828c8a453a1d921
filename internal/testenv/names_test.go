package testenv_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

// TestSearchAttributesMatchTheNamesTable: every place that registers search
// attributes outside Go code lists exactly workflows.SearchAttributes.
// docker-compose.yml registers them with `starter setup`, from this table; the
// deployment files are checked by deploy/deploy_test.go.
func TestSearchAttributesMatchTheNamesTable(t *testing.T) {
	want := workflows.SearchAttributeFlags()
	if !slices.Equal(testenv.TemporalSearchAttributes, want) {
		t.Errorf("testenv.TemporalSearchAttributes %v, the table says %v", testenv.TemporalSearchAttributes, want)
	}
	root := filepath.Join("..", "..")
	for file, pattern := range map[string]*regexp.Regexp{
		"scripts/dev-stack": regexp.MustCompile(`(?m)^SEARCH_ATTRIBUTES=\(([^)]*)\)`),
	} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range pattern.FindAllStringSubmatch(string(b), -1) {
			got = append(got, regexp.MustCompile(`\S+`).FindAllString(m[1], -1)...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s registers %v, the table says %v", file, got, want)
		}
	}
}
