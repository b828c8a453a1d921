package access

import (
	"slices"
	"strconv"
	"strings"
)

// SharedNames are the shared or default account names a review flags, compared
// without regard to case.
var SharedNames = []string{"postgres", "admin", "root", "test", "guest"}

// Flags of a review item.
const (
	// FlagOrphan: a connector found the account and the registry does not know it.
	FlagOrphan = "orphan"
	// FlagShared: a shared or default name (SharedNames).
	FlagShared = "shared"
	// FlagUnmapped: the registry maps the account to nobody.
	FlagUnmapped = "unmapped"
	// FlagProtected: the connector never disables it (superuser, its own role).
	FlagProtected = "protected"
	// FlagLeaver: its person has left and the account is still enabled.
	FlagLeaver = "leaver"
)

// Item is one account in an access review. It carries ids only: it goes into
// workflow history.
type Item struct {
	ID         string   `json:"id"`
	PersonID   string   `json:"personId,omitempty"`
	System     string   `json:"system"`
	Account    string   `json:"account"`
	Connector  string   `json:"connector"`
	Flags      []string `json:"flags,omitempty"`
	Service    bool     `json:"service,omitempty"`
	AmazonData bool     `json:"amazonData,omitempty"`
	// Reviewer is the person id who decides: the person's manager, else the DPO.
	Reviewer string `json:"reviewer"`
}

// Has tells whether the item carries flag f.
func (i Item) Has(f string) bool { return slices.Contains(i.Flags, f) }

// Flagged items (orphans, shared names, accounts mapped to nobody) may be kept
// only with a written reason.
func (i Item) Flagged() bool { return i.Has(FlagOrphan) || i.Has(FlagShared) || i.Has(FlagUnmapped) }

// IsShared tells whether name is a shared or default account name.
func IsShared(name string) bool {
	return slices.ContainsFunc(SharedNames, func(s string) bool { return strings.EqualFold(s, name) })
}

// BuildItems turns what the connectors found (enabled accounts only) and what the
// registry knows into review items, ordered by system and account and numbered
// from 1. The reviewer of an account is its person's manager; the DPO reviews
// orphans, accounts mapped to nobody, managerless people's and managers' own.
func BuildItems(found []Found, connectorOf func(system string) string, registry []Account, people map[string]Person, dpo string) []Item {
	reg := make(map[[2]string]Account, len(registry))
	for _, a := range registry {
		reg[[2]string{a.System, a.Account}] = a
	}
	managers := map[string]bool{}
	for _, p := range people {
		if p.ManagerID != "" {
			managers[p.ManagerID] = true
		}
	}
	found = slices.Clone(found)
	slices.SortFunc(found, func(a, b Found) int {
		if c := strings.Compare(a.System, b.System); c != 0 {
			return c
		}
		return strings.Compare(a.Account, b.Account)
	})
	found = slices.CompactFunc(found, func(a, b Found) bool { return a.System == b.System && a.Account == b.Account })
	var items []Item
	for _, f := range found {
		if f.Disabled {
			continue
		}
		it := Item{System: f.System, Account: f.Account, Connector: connectorOf(f.System), Reviewer: dpo}
		a, known := reg[[2]string{f.System, f.Account}]
		switch {
		case !known:
			it.Flags = append(it.Flags, FlagOrphan)
		case a.PersonID == "":
			it.Flags = append(it.Flags, FlagUnmapped)
		}
		if IsShared(f.Account) {
			it.Flags = append(it.Flags, FlagShared)
		}
		if f.Protected != "" {
			it.Flags = append(it.Flags, FlagProtected)
		}
		if known {
			it.PersonID, it.Service, it.AmazonData = a.PersonID, a.Service, a.AmazonData
		}
		if p, ok := people[it.PersonID]; ok && it.PersonID != "" {
			if p.Status == StatusTerminated {
				it.Flags = append(it.Flags, FlagLeaver)
			}
			if p.ManagerID != "" && !managers[p.ID] {
				it.Reviewer = p.ManagerID
			}
		}
		it.ID = strconv.Itoa(len(items) + 1)
		items = append(items, it)
	}
	return items
}
