package access

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"github.com/plusranger/dpp/internal/actor"
)

// Columns of HR's CSV exports, exactly as `starter access import` expects them.
var (
	PeopleColumns   = []string{"id", "name", "email", "slack_user_id", "manager_id"}
	AccountsColumns = []string{"person_id", "system", "account", "amazon_data", "service"}
)

var (
	slackUserPattern = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	systemPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// ValidPersonID tells whether id has the form of a person id: an actor
// identifier, since person ids sign decisions kept for years in the evidence log.
func ValidPersonID(id string) bool { return actor.Valid(id) == nil }

// RowError is one bad row: where it is and which field is wrong, never the value
// (it may be a name or an e-mail address).
type RowError struct {
	File    string // "people" or "accounts"
	Line    int    // 1-based line in the file, the header being line 1
	Field   string
	Problem string
}

func (e RowError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Problem)
	}
	return fmt.Sprintf("%s line %d: %s: %s", e.File, e.Line, e.Field, e.Problem)
}

// ImportError lists every bad row of an import; nothing was imported.
type ImportError struct{ Rows []RowError }

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "access import: %d bad row(s), nothing imported:", len(e.Rows))
	for _, r := range e.Rows {
		b.WriteString("\n  ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// PersonRow is a row of people.csv. Name and Email are personal data: they go
// only to the vault.
type PersonRow struct {
	Line        int
	ID          string
	Name        string
	Email       string
	SlackUserID string
	ManagerID   string
}

// AccountRow is a row of accounts.csv.
type AccountRow struct {
	Line       int
	PersonID   string
	System     string
	Account    string
	AmazonData bool
	Service    bool
}

// readCSV reads a CSV file whose header must name exactly want (in any order)
// and calls row with each record's fields by column name and its line number.
func readCSV(file string, r io.Reader, want []string, row func(line int, f map[string]string)) []RowError {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return []RowError{{File: file, Line: 1, Field: "header", Problem: "cannot read the header: " + csvProblem(err)}}
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // spreadsheet exports start with a BOM
	}
	got := slices.Clone(header)
	for i := range got {
		got[i] = strings.TrimSpace(got[i])
	}
	sorted, wantSorted := slices.Clone(got), slices.Clone(want)
	slices.Sort(sorted)
	slices.Sort(wantSorted)
	if !slices.Equal(sorted, wantSorted) {
		return []RowError{{File: file, Line: 1, Field: "header",
			Problem: fmt.Sprintf("columns must be exactly %s, got %s", strings.Join(want, ","), strings.Join(got, ","))}}
	}
	var errs []RowError
	for {
		line, _ := cr.FieldPos(0)
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return errs
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return append(errs, RowError{File: file, Line: line, Field: "row", Problem: csvProblem(err)})
		}
		line, _ = cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(got) {
			errs = append(errs, RowError{File: file, Line: line, Field: "row",
				Problem: fmt.Sprintf("has %d fields, the header %d", len(rec), len(got))})
			continue
		}
		f := make(map[string]string, len(got))
		for i, name := range got {
			f[name] = strings.TrimSpace(rec[i])
		}
		row(line, f)
	}
}

// csvProblem describes a CSV syntax error without quoting the offending text.
func csvProblem(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return "not valid CSV"
}

// ParsePeople reads people.csv and checks each row on its own (manager ids are
// checked against the registry by Import); every bad row is reported.
func ParsePeople(r io.Reader) ([]PersonRow, []RowError) {
	var out []PersonRow
	var bad []RowError
	seen, slackSeen := map[string]int{}, map[string]int{}
	errs := readCSV("people", r, PeopleColumns, func(line int, f map[string]string) {
		p := PersonRow{Line: line, ID: f["id"], Name: f["name"], Email: f["email"], SlackUserID: f["slack_user_id"], ManagerID: f["manager_id"]}
		problem := func(field, what string) { bad = append(bad, RowError{"people", line, field, what}) }
		switch {
		case p.ID == "":
			problem("id", "is empty")
		case !ValidPersonID(p.ID):
			problem("id", "must be a lower-case id (letters, digits, '.', '_', '-'; at most 64), not a name or e-mail address")
		case seen[p.ID] != 0:
			problem("id", fmt.Sprintf("same id as line %d", seen[p.ID]))
		}
		if p.Name == "" {
			problem("name", "is empty")
		}
		if a, err := mail.ParseAddress(p.Email); err != nil || a.Address != p.Email {
			problem("email", "is not a plain e-mail address")
		}
		switch {
		case p.SlackUserID == "":
		case !slackUserPattern.MatchString(p.SlackUserID):
			problem("slack_user_id", "is not a Slack user id (U... or W...)")
		case slackSeen[p.SlackUserID] != 0:
			problem("slack_user_id", fmt.Sprintf("same Slack user as line %d", slackSeen[p.SlackUserID]))
		}
		switch {
		case p.ManagerID == "":
		case !ValidPersonID(p.ManagerID):
			problem("manager_id", "is not a person id")
		case p.ManagerID == p.ID:
			problem("manager_id", "names the person themself")
		}
		if p.ID != "" && seen[p.ID] == 0 {
			seen[p.ID] = line
		}
		if p.SlackUserID != "" && slackSeen[p.SlackUserID] == 0 {
			slackSeen[p.SlackUserID] = line
		}
		out = append(out, p)
	})
	return out, append(errs, bad...)
}

// ParseAccounts reads accounts.csv and checks each row on its own (person ids are
// checked by Import); every bad row is reported.
func ParseAccounts(r io.Reader) ([]AccountRow, []RowError) {
	var out []AccountRow
	var bad []RowError
	seen := map[[2]string]int{}
	errs := readCSV("accounts", r, AccountsColumns, func(line int, f map[string]string) {
		a := AccountRow{Line: line, PersonID: f["person_id"], System: f["system"], Account: f["account"]}
		problem := func(field, what string) { bad = append(bad, RowError{"accounts", line, field, what}) }
		if a.PersonID != "" && !ValidPersonID(a.PersonID) {
			problem("person_id", "is not a person id")
		}
		if !systemPattern.MatchString(a.System) {
			problem("system", "must be 1-64 lower-case letters, digits, '.', '_' or '-'")
		}
		switch {
		case a.Account == "":
			problem("account", "is empty")
		case len(a.Account) > 128:
			problem("account", "is longer than 128 characters")
		}
		key := [2]string{a.System, a.Account}
		if first := seen[key]; first != 0 && a.Account != "" {
			problem("account", fmt.Sprintf("same system and account as line %d", first))
		} else {
			seen[key] = line
		}
		var ok bool
		if a.AmazonData, ok = parseBool(f["amazon_data"]); !ok {
			problem("amazon_data", "must be true or false")
		}
		if a.Service, ok = parseBool(f["service"]); !ok {
			problem("service", "must be true or false")
		}
		out = append(out, a)
	})
	return out, append(errs, bad...)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "y", "1":
		return true, true
	case "false", "no", "n", "0":
		return false, true
	}
	return false, false
}
