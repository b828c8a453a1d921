package access

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// ImportResult counts what an import changed.
type ImportResult struct {
	PeopleAdded, PeopleUpdated, PeopleUnchanged       int
	AccountsAdded, AccountsUpdated, AccountsUnchanged int
}

func (r ImportResult) String() string {
	return fmt.Sprintf("people: %d added, %d updated, %d unchanged; accounts: %d added, %d updated, %d unchanged",
		r.PeopleAdded, r.PeopleUpdated, r.PeopleUnchanged, r.AccountsAdded, r.AccountsUpdated, r.AccountsUnchanged)
}

// storedPerson is a people row as Import needs it.
type storedPerson struct {
	kmsKeyID            string
	wrapped             []byte
	nameSealed, emailSe []byte
	slackUserID         string
	managerID           string
}

// Import loads HR's exports: people first, then accounts, in one transaction, so
// a bad row anywhere imports nothing (*ImportError lists every bad row by file,
// line and field). Importing the same files again changes nothing: a person's
// name and e-mail are re-sealed only when they changed. People and accounts
// missing from the files are left as they are: leaving is offboarding's business.
func (r *Registry) Import(ctx context.Context, peopleCSV, accountsCSV io.Reader) (ImportResult, error) {
	people, errs := ParsePeople(peopleCSV)
	accounts, accErrs := ParseAccounts(accountsCSV)
	errs = append(errs, accErrs...)

	stored, err := r.storedPeople(ctx)
	if err != nil {
		return ImportResult{}, err
	}
	known := func(id string) bool {
		if _, ok := stored[id]; ok {
			return true
		}
		return slices.ContainsFunc(people, func(p PersonRow) bool { return p.ID == id })
	}
	for _, p := range people {
		if p.ManagerID != "" && ValidPersonID(p.ManagerID) && !known(p.ManagerID) {
			errs = append(errs, RowError{"people", p.Line, "manager_id", ErrUnknownPerson.Error()})
		}
	}
	for _, a := range accounts {
		if a.PersonID != "" && ValidPersonID(a.PersonID) && !known(a.PersonID) {
			errs = append(errs, RowError{"accounts", a.Line, "person_id", ErrUnknownPerson.Error()})
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b RowError) int {
			if a.File != b.File {
				return -compareStrings(a.File, b.File) // people before accounts
			}
			return a.Line - b.Line
		})
		return ImportResult{}, &ImportError{Rows: errs}
	}

	// Seal before the transaction: KMS calls must not hold it open.
	type write struct {
		p                   PersonRow
		st                  storedPerson
		isNew, sealsChanged bool
	}
	writes := make([]write, 0, len(people))
	for _, p := range people {
		w := write{p: p}
		old, exists := stored[p.ID]
		w.isNew = !exists
		if w.st, w.sealsChanged, err = r.seal(ctx, p, old, exists); err != nil {
			return ImportResult{}, fmt.Errorf("access import: people line %d: %w", p.Line, err)
		}
		writes = append(writes, w)
	}

	var res ImportResult
	now := r.now()
	err = pgx.BeginFunc(ctx, r.Pool, func(tx pgx.Tx) error {
		res = ImportResult{}
		for _, w := range writes {
			old := stored[w.p.ID]
			switch {
			case w.isNew:
				tag, err := tx.Exec(ctx, `INSERT INTO people (id, slack_user_id, manager_id, kms_key_id, wrapped_key,
					name_sealed, email_sealed, imported_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8)
					ON CONFLICT (id) DO NOTHING`,
					w.p.ID, nullable(w.p.SlackUserID), nullable(w.p.ManagerID), w.st.kmsKeyID, w.st.wrapped,
					w.st.nameSealed, w.st.emailSe, now)
				if err != nil {
					return fmt.Errorf("access import: people line %d: %w", w.p.Line, dbProblem(err))
				}
				if tag.RowsAffected() == 0 {
					return fmt.Errorf("access import: people line %d: the person was added meanwhile by another import; run it again", w.p.Line)
				}
				res.PeopleAdded++
			case w.sealsChanged || old.slackUserID != w.p.SlackUserID || old.managerID != w.p.ManagerID:
				// The wrapped key is compared so that a concurrent import that
				// re-keyed the person cannot be overwritten with ciphertext under
				// a key no longer stored.
				tag, err := tx.Exec(ctx, `UPDATE people SET slack_user_id = $2, manager_id = $3, name_sealed = $4,
					email_sealed = $5, updated_at = $6 WHERE id = $1 AND wrapped_key = $7`,
					w.p.ID, nullable(w.p.SlackUserID), nullable(w.p.ManagerID), w.st.nameSealed, w.st.emailSe, now, w.st.wrapped)
				if err != nil {
					return fmt.Errorf("access import: people line %d: %w", w.p.Line, dbProblem(err))
				}
				if tag.RowsAffected() == 0 {
					return fmt.Errorf("access import: people line %d: the person changed meanwhile; run the import again", w.p.Line)
				}
				res.PeopleUpdated++
			default:
				res.PeopleUnchanged++
			}
		}
		for _, a := range accounts {
			var inserted, updated bool
			err := tx.QueryRow(ctx, `WITH old AS (
					SELECT person_id, amazon_data, service FROM accounts WHERE system = $1 AND account = $2
				), up AS (
					INSERT INTO accounts (system, account, person_id, amazon_data, service) VALUES ($1,$2,$3,$4,$5)
					ON CONFLICT (system, account) DO UPDATE SET person_id = EXCLUDED.person_id,
						amazon_data = EXCLUDED.amazon_data, service = EXCLUDED.service
					WHERE (accounts.person_id, accounts.amazon_data, accounts.service)
						IS DISTINCT FROM (EXCLUDED.person_id, EXCLUDED.amazon_data, EXCLUDED.service)
					RETURNING 1
				)
				SELECT NOT EXISTS (SELECT 1 FROM old), EXISTS (SELECT 1 FROM up)`,
				a.System, a.Account, nullable(a.PersonID), a.AmazonData, a.Service).Scan(&inserted, &updated)
			if err != nil {
				return fmt.Errorf("access import: accounts line %d: %w", a.Line, dbProblem(err))
			}
			switch {
			case inserted:
				res.AccountsAdded++
			case updated:
				res.AccountsUpdated++
			default:
				res.AccountsUnchanged++
			}
		}
		return nil
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// seal returns the sealed name and e-mail of p: under a new data key for a new
// person, else under the person's key, unchanged when the plaintext is the same.
func (r *Registry) seal(ctx context.Context, p PersonRow, old storedPerson, exists bool) (storedPerson, bool, error) {
	st := old
	st.slackUserID, st.managerID = p.SlackUserID, p.ManagerID
	if !exists {
		key, err := r.Vault.NewDataKey(ctx, personContext(p.ID))
		if err != nil {
			return st, false, err
		}
		defer key.Destroy()
		st.kmsKeyID, st.wrapped = key.KMSKeyID, key.Wrapped
		if st.nameSealed, err = key.Seal(fieldName, []byte(p.Name)); err != nil {
			return st, false, err
		}
		st.emailSe, err = key.Seal(fieldEmail, []byte(p.Email))
		return st, true, err
	}
	key, err := r.Vault.OpenDataKey(ctx, personContext(p.ID), old.kmsKeyID, old.wrapped)
	if err != nil {
		return st, false, err
	}
	defer key.Destroy()
	changed := false
	for _, f := range []struct {
		name, value string
		sealed      *[]byte
	}{{fieldName, p.Name, &st.nameSealed}, {fieldEmail, p.Email, &st.emailSe}} {
		pt, err := key.Open(f.name, *f.sealed)
		if err == nil && bytes.Equal(pt, []byte(f.value)) {
			clear(pt)
			continue
		}
		clear(pt)
		if *f.sealed, err = key.Seal(f.name, []byte(f.value)); err != nil {
			return st, false, err
		}
		changed = true
	}
	return st, changed, nil
}

func (r *Registry) storedPeople(ctx context.Context) (map[string]storedPerson, error) {
	rows, err := r.Pool.Query(ctx, `SELECT id, kms_key_id, wrapped_key, name_sealed, email_sealed,
		coalesce(slack_user_id, ''), coalesce(manager_id, '') FROM people`)
	if err != nil {
		return nil, fmt.Errorf("access: read people: %w", err)
	}
	defer rows.Close()
	out := map[string]storedPerson{}
	for rows.Next() {
		var id string
		var p storedPerson
		if err := rows.Scan(&id, &p.kmsKeyID, &p.wrapped, &p.nameSealed, &p.emailSe, &p.slackUserID, &p.managerID); err != nil {
			return nil, fmt.Errorf("access: read people: %w", err)
		}
		out[id] = p
	}
	return out, rows.Err()
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// dbProblem keeps the database's error but not its DETAIL, which quotes values.
func dbProblem(err error) error {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		switch pgErr.SQLState() {
		case "23505":
			return errors.New("conflicts with a row already stored (a Slack user id or account used twice)")
		case "23503":
			return errors.New("refers to a person who does not exist")
		case "23514":
			return errors.New("a value is outside what the registry accepts")
		}
	}
	return err
}

// Person returns a person by id, or ErrUnknownPerson.
func (r *Registry) Person(ctx context.Context, id string) (Person, error) {
	return r.personWhere(ctx, `id = $1`, id)
}

// PersonBySlackUser returns the person with this Slack user id, or ErrUnknownPerson.
func (r *Registry) PersonBySlackUser(ctx context.Context, slackUserID string) (Person, error) {
	return r.personWhere(ctx, `slack_user_id = $1`, slackUserID)
}

func (r *Registry) personWhere(ctx context.Context, where string, arg string) (Person, error) {
	var p Person
	err := r.Pool.QueryRow(ctx, `SELECT id, coalesce(slack_user_id, ''), coalesce(manager_id, ''), status, terminated_at
		FROM people WHERE `+where, arg).Scan(&p.ID, &p.SlackUserID, &p.ManagerID, &p.Status, &p.TerminatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Person{}, ErrUnknownPerson
	}
	if err != nil {
		return Person{}, fmt.Errorf("access: read person: %w", err)
	}
	return p, nil
}

// People returns every person, by id.
func (r *Registry) People(ctx context.Context) (map[string]Person, error) {
	rows, err := r.Pool.Query(ctx, `SELECT id, coalesce(slack_user_id, ''), coalesce(manager_id, ''), status, terminated_at FROM people`)
	if err != nil {
		return nil, fmt.Errorf("access: read people: %w", err)
	}
	defer rows.Close()
	out := map[string]Person{}
	for rows.Next() {
		var p Person
		if err := rows.Scan(&p.ID, &p.SlackUserID, &p.ManagerID, &p.Status, &p.TerminatedAt); err != nil {
			return nil, fmt.Errorf("access: read people: %w", err)
		}
		out[p.ID] = p
	}
	return out, rows.Err()
}

const accountColumns = `system, account, coalesce(person_id, ''), amazon_data, service, disable_requested_at, disabled_at, coalesce(disabled_by, '')`

func scanAccounts(rows pgx.Rows, err error) ([]Account, error) {
	if err != nil {
		return nil, fmt.Errorf("access: read accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		if err := rows.Scan(&a.System, &a.Account, &a.PersonID, &a.AmazonData, &a.Service,
			&a.DisableRequestedAt, &a.DisabledAt, &a.DisabledBy); err != nil {
			return nil, fmt.Errorf("access: read accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Accounts returns every registry account, ordered by system and account.
func (r *Registry) Accounts(ctx context.Context) ([]Account, error) {
	return scanAccounts(r.Pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY system, account`))
}

// AccountsOf returns the accounts of one person; ErrUnknownPerson if there is no such person.
func (r *Registry) AccountsOf(ctx context.Context, personID string) ([]Account, error) {
	if _, err := r.Person(ctx, personID); err != nil {
		return nil, err
	}
	return scanAccounts(r.Pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE person_id = $1 ORDER BY system, account`, personID))
}

// Account returns one registry account, or ErrUnknownAccount.
func (r *Registry) Account(ctx context.Context, system, account string) (Account, error) {
	as, err := scanAccounts(r.Pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE system = $1 AND account = $2`, system, account))
	if err != nil {
		return Account{}, err
	}
	if len(as) == 0 {
		return Account{}, ErrUnknownAccount
	}
	return as[0], nil
}

// MarkTerminated records that a person left at 'at'. Marking them again keeps
// the first time.
func (r *Registry) MarkTerminated(ctx context.Context, personID string, at time.Time) error {
	tag, err := r.Pool.Exec(ctx, `UPDATE people SET status = 'terminated', terminated_at = coalesce(terminated_at, $2),
		updated_at = $3 WHERE id = $1`, personID, at.UTC(), r.now())
	if err != nil {
		return fmt.Errorf("access: mark person terminated: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrUnknownPerson
	}
	return nil
}

// SaveMessage remembers where a Slack message was posted, so it can be updated later.
func (r *Registry) SaveMessage(ctx context.Context, ref, channel, ts string) error {
	_, err := r.Pool.Exec(ctx, `INSERT INTO slack_messages (ref, channel, ts, posted_at) VALUES ($1,$2,$3,$4)
		ON CONFLICT (ref) DO UPDATE SET channel = EXCLUDED.channel, ts = EXCLUDED.ts, posted_at = EXCLUDED.posted_at`,
		ref, channel, ts, r.now())
	if err != nil {
		return fmt.Errorf("access: save Slack message %s: %w", ref, err)
	}
	return nil
}

// Message returns where a message was posted; ok is false if it never was.
func (r *Registry) Message(ctx context.Context, ref string) (channel, ts string, ok bool, err error) {
	err = r.Pool.QueryRow(ctx, `SELECT channel, ts FROM slack_messages WHERE ref = $1`, ref).Scan(&channel, &ts)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("access: read Slack message %s: %w", ref, err)
	}
	return channel, ts, true, nil
}
