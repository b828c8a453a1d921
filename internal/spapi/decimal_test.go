package spapi

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecimalMinor(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"12.34", 1234, true},
		{"1.5", 150, true},
		{"0.05", 5, true},
		{"7", 700, true},
		{"0", 0, true},
		{"299.90", 29990, true},
		{"19940", 1994000, true},
		{"-3.20", -320, true},
		{"-0.05", -5, true},
		{"007.10", 710, true},
		{"92233720368547758.07", 9223372036854775807, true},
		{"92233720368547758.08", 0, false}, // overflows int64
		{"-", 0, false},
		{"", 0, false},
		{"1e3", 0, false},
		{"12.345", 0, false},
		{".5", 0, false},
		{"5.", 0, false},
		{"+5", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"1,50", 0, false},
		{"£12.50", 0, false},
		{"--1", 0, false},
		{"1.2.3", 0, false},
		{"NaN", 0, false},
	}
	for _, c := range cases {
		got, err := Decimal(c.in).Minor()
		if !c.ok {
			require.Error(t, err, "%q", c.in)
			assert.True(t, errors.Is(err, ErrNotDecimal))
			if c.in != "" {
				assert.NotContains(t, err.Error(), c.in, "the error must not echo the value")
			}
			continue
		}
		require.NoError(t, err, "%q", c.in)
		assert.Equal(t, c.want, got, "%q", c.in)
	}
}

func TestMinorToDecimal(t *testing.T) {
	for minor, want := range map[int64]Decimal{0: "0.00", 5: "0.05", 150: "1.50", 1234: "12.34", -5: "-0.05", -1234: "-12.34", 39900: "399.00"} {
		assert.Equal(t, want, MinorToDecimal(minor))
		back, err := want.Minor()
		require.NoError(t, err)
		assert.Equal(t, minor, back)
	}
}

func TestDecimalUnmarshal(t *testing.T) {
	var m Money
	require.NoError(t, json.Unmarshal([]byte(`{"amount":"12.30","currencyCode":"GBP"}`), &m))
	assert.Equal(t, Decimal("12.30"), m.Amount)
	require.NoError(t, json.Unmarshal([]byte(`{"amount":12.3,"currencyCode":"GBP"}`), &m))
	assert.Equal(t, Decimal("12.3"), m.Amount)
	err := json.Unmarshal([]byte(`{"amount":{"secret":"x"},"currencyCode":"GBP"}`), &m)
	require.Error(t, err)
	assert.Equal(t, "amount: not a decimal string", describeDecodeError(err))
}
