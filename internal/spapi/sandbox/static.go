package sandbox

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// staticExample is one x-amzn-api-sandbox.static entry of the model: the
// request parameters it answers and the response (status and body).
type staticExample struct {
	op     string
	status int
	params []exampleParam
	body   []byte
	index  int // position under its response, for a deterministic order
}

type exampleParam struct {
	name   string
	value  string   // scalar value
	list   []string // array value (isList)
	isList bool
}

// parsedModel is what the server takes from the embedded model.
type parsedModel struct {
	static map[string][]staticExample // by operationId, most specific first
	// includedData is the enum of the includedData parameter.
	includedData map[string]bool
}

// parseModel reads the static sandbox examples and the includedData enum.
func parseModel(raw []byte) (*parsedModel, error) {
	var m struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("sandbox: parsing model: %w", err)
	}
	pm := &parsedModel{static: map[string][]staticExample{}, includedData: map[string]bool{}}
	paths := make([]string, 0, len(m.Paths))
	for p := range m.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		methods := m.Paths[p]
		for method, rawOp := range methods {
			if method == "parameters" {
				continue
			}
			var op struct {
				OperationID string `json:"operationId"`
				Parameters  []struct {
					Name  string `json:"name"`
					Items struct {
						Enum []string `json:"enum"`
					} `json:"items"`
				} `json:"parameters"`
				Responses map[string]struct {
					Sandbox struct {
						Static []struct {
							Request struct {
								Parameters map[string]struct {
									Value json.RawMessage `json:"value"`
								} `json:"parameters"`
							} `json:"request"`
							Response json.RawMessage `json:"response"`
						} `json:"static"`
					} `json:"x-amzn-api-sandbox"`
				} `json:"responses"`
			}
			if err := json.Unmarshal(rawOp, &op); err != nil {
				return nil, fmt.Errorf("sandbox: parsing model operation %s %s: %w", method, p, err)
			}
			for _, par := range op.Parameters {
				if par.Name == "includedData" {
					for _, v := range par.Items.Enum {
						pm.includedData[v] = true
					}
				}
			}
			for code, resp := range op.Responses {
				status, err := strconv.Atoi(code)
				if err != nil {
					continue // "default"
				}
				for i, ex := range resp.Sandbox.Static {
					se := staticExample{op: op.OperationID, status: status, body: ex.Response, index: i}
					for name, v := range ex.Request.Parameters {
						ep, err := parseExampleValue(name, v.Value)
						if err != nil {
							return nil, fmt.Errorf("sandbox: %s %s static example %d: %w", op.OperationID, code, i, err)
						}
						se.params = append(se.params, ep)
					}
					sort.Slice(se.params, func(a, b int) bool { return se.params[a].name < se.params[b].name })
					if len(se.body) == 0 || !json.Valid(se.body) {
						return nil, fmt.Errorf("sandbox: %s %s static example %d: no valid response body", op.OperationID, code, i)
					}
					pm.static[op.OperationID] = append(pm.static[op.OperationID], se)
				}
			}
		}
	}
	for op := range pm.static {
		ex := pm.static[op]
		// Most specific (most parameters) first; then by status for determinism.
		sort.Slice(ex, func(a, b int) bool {
			if len(ex[a].params) != len(ex[b].params) {
				return len(ex[a].params) > len(ex[b].params)
			}
			if ex[a].status != ex[b].status {
				return ex[a].status < ex[b].status
			}
			return ex[a].index < ex[b].index
		})
	}
	return pm, nil
}

func parseExampleValue(name string, raw json.RawMessage) (exampleParam, error) {
	ep := exampleParam{name: name}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		ep.value = s
		return ep, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		ep.list, ep.isList = list, true
		return ep, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		ep.value = n.String()
		return ep, nil
	}
	return ep, fmt.Errorf("parameter %s: unsupported value", name)
}

// matchStatic returns the static example of op that the request matches: every
// parameter of the example has an equal value in the request (path parameter
// orderId, or the query). Arrays compare as sets; date-times compare as
// instants. includedData is not compared, so any includedData (or none)
// returns an example's fixed body. Parameters the example does not name are
// ignored.
func (pm *parsedModel) matchStatic(op, orderID string, q url.Values) *staticExample {
	for i := range pm.static[op] {
		ex := &pm.static[op][i]
		if ex.matches(orderID, q) {
			return ex
		}
	}
	return nil
}

func (ex *staticExample) matches(orderID string, q url.Values) bool {
	for _, p := range ex.params {
		if p.name == "includedData" {
			continue
		}
		var got string
		if p.name == "orderId" {
			got = orderID
		} else {
			if !q.Has(p.name) {
				return false
			}
			got = q.Get(p.name)
		}
		if p.isList {
			if !sameSet(splitCSV(got), p.list) {
				return false
			}
			continue
		}
		if got != p.value && !sameInstant(got, p.value) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func sameInstant(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}

// splitCSV splits a collectionFormat csv value; "" is an empty list.
func splitCSV(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
