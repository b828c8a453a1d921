package config

import (
	"slices"
	"strings"
	"testing"
)

func TestOperatorsAreIdentifiersNeverNamesOrEmails(t *testing.T) {
	kv := minimal()
	c, err := Load(env(kv))
	if err != nil || !slices.Equal(c.Operators, []string{"dpo"}) {
		t.Fatalf("default operators %v, %v", c, err)
	}
	kv["DPP_OPERATORS"] = "dpo, ops-1,legal.team"
	if c, err = Load(env(kv)); err != nil || !slices.Equal(c.Operators, []string{"dpo", "ops-1", "legal.team"}) {
		t.Fatalf("operators %v, %v", c, err)
	}
	kv["DPP_OPERATORS"] = "dpo,jane.doe@plusranger.co.uk,Jane Doe,order-sync"
	_, err = Load(env(kv))
	if err == nil {
		t.Fatal("an e-mail address, a name and a system name were accepted as operators")
	}
	for _, want := range []string{"DPP_OPERATORS entry 2 must be an operator identifier", "DPP_OPERATORS entry 3 must be", "entry 4 is a system name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "jane") || strings.Contains(err.Error(), "Jane") {
		t.Errorf("the error repeats a value that may be personal data:\n%v", err)
	}
}
