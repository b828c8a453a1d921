package orders

import (
	"reflect"
	"strings"
	"testing"

	"github.com/plusranger/dpp/internal/spapi"
)

// fillStrings sets every string field reachable in v (through pointers, structs
// and one-element slices) to a value naming its path, so a PII field the sealer
// forgets shows up by name.
func fillStrings(v reflect.Value, path string, seen map[string]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillStrings(v.Elem(), path, seen)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.IsExported() {
				fillStrings(v.Field(i), path+"."+f.Name, seen)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			return // enums (programs) and serial numbers are not buyer data
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillStrings(v.Index(0), path+"[0]", seen)
	case reflect.String:
		val := "v" + strings.ReplaceAll(path, ".", "_")
		v.SetString(val)
		seen[val] = path
	}
}

// TestEveryBuyerFieldIsSealed fails when the SP-API model gains a field in a
// buyer-data structure that piiFields does not seal.
func TestEveryBuyerFieldIsSealed(t *testing.T) {
	var o spapi.Order
	seen := map[string]string{}
	for name, target := range map[string]any{"Buyer": &o.Buyer, "Recipient": &o.Recipient, "Tax": &o.Tax} {
		fillStrings(reflect.ValueOf(target).Elem(), name, seen)
	}
	o.OrderItems = []spapi.OrderItem{{Fulfillment: &spapi.ItemFulfillment{Packing: &spapi.ItemPacking{
		GiftOption: &spapi.GiftOption{GiftMessage: "vGift"}}}}}
	seen["vGift"] = "OrderItems[0].Fulfillment.Packing.GiftOption.GiftMessage"

	sealed := map[string]bool{}
	for _, v := range piiFields(&o) {
		sealed[v] = true
	}
	for val, path := range seen {
		if !sealed[val] {
			t.Errorf("%s is not sealed", path)
		}
	}
}

func TestAddressLinesSkipEmptyAndKeepOrder(t *testing.T) {
	f := map[string]string{"r.addressLine1": "1 High St", "r.city": "Leeds", "r.postalCode": "LS1 1AA", "r.phone": "07700"}
	got := strings.Join(addressLines(f, "r."), "|")
	if got != "1 High St|Leeds|LS1 1AA" {
		t.Fatalf("got %q (the phone is not part of an invoice address)", got)
	}
}
