package sandbox_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/spapi/sandbox"
)

// schema is the subset of Swagger 2.0 schema objects the Orders model uses.
type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Required   []string           `json:"required"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	Enum       []any              `json:"enum"`
}

// modelChecker checks JSON values against the model's definitions: types,
// formats, enums, required properties, and that no property is unknown to
// the model (so a misspelt JSON tag in our types is caught).
type modelChecker struct {
	defs map[string]*schema
}

func newModelChecker(t *testing.T) *modelChecker {
	t.Helper()
	var m struct {
		Definitions map[string]*schema `json:"definitions"`
	}
	require.NoError(t, json.Unmarshal(sandbox.OrdersModel(), &m))
	require.NotEmpty(t, m.Definitions)
	return &modelChecker{defs: m.Definitions}
}

// check validates body against definition def and returns the problems.
func (c *modelChecker) check(t *testing.T, def string, body []byte) []string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	var problems []string
	c.walk(def, c.defs[def], v, &problems)
	return problems
}

func (c *modelChecker) resolve(s *schema) *schema {
	for s != nil && s.Ref != "" {
		s = c.defs[strings.TrimPrefix(s.Ref, "#/definitions/")]
	}
	return s
}

func (c *modelChecker) walk(path string, s *schema, v any, problems *[]string) {
	s = c.resolve(s)
	if s == nil {
		*problems = append(*problems, path+": no schema")
		return
	}
	fail := func(format string, args ...any) {
		*problems = append(*problems, path+": "+fmt.Sprintf(format, args...))
	}
	typ := s.Type
	if typ == "" && s.Properties != nil {
		typ = "object"
	}
	switch typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("not an object")
			return
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				fail("required property %s missing", r)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := s.Properties[k]
			if !ok {
				fail("property %s is not in the model", k)
				continue
			}
			c.walk(path+"."+k, ps, obj[k], problems)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("not an array")
			return
		}
		for i, x := range arr {
			c.walk(fmt.Sprintf("%s[%d]", path, i), s.Items, x, problems)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("not a string")
			return
		}
		switch s.Format {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("not a date-time")
			}
		case "date":
			if _, err := time.Parse(time.DateOnly, str); err != nil {
				fail("not a date")
			}
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, any(str)) {
			fail("%q not in enum", str)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			fail("not an integer")
		}
	case "number":
		if _, ok := v.(float64); !ok {
			fail("not a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("not a boolean")
		}
	default:
		fail("unsupported schema type %q", typ)
	}
}
