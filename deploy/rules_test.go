package deploy_test

import (
	"os"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/plusranger/dpp/internal/app"
)

// The alerting rules read only metrics the worker serves, and each rule has
// what Alertmanager needs.
func TestAlertingRulesReadTheWorkersGauges(t *testing.T) {
	b, err := os.ReadFile("chart/dpp-worker/files/prometheus-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, g := range (&app.App{}).PolicyGauges() {
		served[g.Name] = true
	}
	metric := regexp.MustCompile(`\bdpp_[a-z_]+`)
	n := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: needs alert, labels.severity and annotations.summary", r.Alert)
			}
			for _, m := range metric.FindAllString(r.Expr, -1) {
				if !served[m] {
					t.Errorf("rule %s reads %s, which /metrics does not serve", r.Alert, m)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
}
