package sandbox

import (
	"fmt"

	"github.com/plusranger/dpp/internal/spapi"
)

// WithholdRestrictedData makes getOrder of a generated order answer without its
// BUYER and RECIPIENT data, whatever includedData asks for, as Amazon answers an
// application that lacks the restricted (PII) role: no buyer name, no delivery
// address. It returns an error for an unknown order ID.
func (s *Server) WithholdRestrictedData(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.orders[orderID]; !ok {
		return fmt.Errorf("sandbox: WithholdRestrictedData: no generated order with that ID")
	}
	if s.withheld == nil {
		s.withheld = map[string]bool{}
	}
	s.withheld[orderID] = true
	return nil
}

func withoutRestricted(included map[string]bool) map[string]bool {
	out := make(map[string]bool, len(included))
	for k, v := range included {
		if k != spapi.IncludeBuyer && k != spapi.IncludeRecipient {
			out[k] = v
		}
	}
	return out
}
