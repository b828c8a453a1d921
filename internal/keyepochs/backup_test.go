package keyepochs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/keyepochs"
	"github.com/plusranger/dpp/internal/testenv"
)

// The backup test of issue 11: seal orders, take a pg_dump, purge some, let
// the epoch expire, restore the dump into a new database: nothing in it
// decrypts any more, while the records that had to survive were re-wrapped
// and still decrypt from the live database.
func TestABackupTakenBeforeThePurgeDecryptsNothingOnceTheEpochIsRetired(t *testing.T) {
	r := newRig(t)
	// Day 0: six orders sealed under the day's epoch key.
	purged := []string{orderID(1), orderID(2)} // purged by their workflows before the epoch expires
	overdue := orderID(3)                      // due, not held, not yet purged: meant to die with the key
	survivors := []string{orderID(4), orderID(5)}
	held := orderID(6)
	all := append(append(append([]string{}, purged...), overdue), append(survivors, held)...)
	for _, id := range all {
		r.seal(id)
	}
	epoch0 := r.dataKeyHolders()[orderID(1)]
	for id, key := range r.dataKeyHolders() {
		if key != epoch0 {
			t.Fatalf("%s sealed under %s, want the day's epoch key %s", id, key, epoch0)
		}
	}
	for _, id := range append(append([]string{}, purged...), overdue, held) {
		r.retain(id, day0.Add(10*24*time.Hour), id == held)
	}
	for _, id := range survivors {
		r.retain(id, day0.Add(60*24*time.Hour), false) // not delivered yet
	}

	// The nightly backup, with every order's ciphertext and wrapped data key.
	dump := pgDump(t, r.ownerDSN)
	if bytes.Contains(dump, []byte(marker)) {
		t.Fatal("the dump holds PII in plaintext")
	}

	// Day 11: two orders purged. Their certificates say which key still
	// protects the copies, and when its deletion takes effect.
	r.clock.Set(day0.Add(11 * 24 * time.Hour))
	p := r.purge(purged[0])
	r.purge(purged[1])
	var cert evidence.Certificate
	if err := json.Unmarshal(p.Certificate.Body, &cert); err != nil {
		t.Fatal(err)
	}
	alias0 := keyepochs.Default.PIIAlias(r.epochs.AliasPrefix, day0)
	planned := day0.Add(keyepochs.Default.Lifetime + keyepochs.Default.DeletionWindow).Format(time.RFC3339)
	if n := cert.Sanitization.Notes; !strings.Contains(n, alias0) || !strings.Contains(n, planned) {
		t.Fatalf("the order's certificate does not name %s and %s: %s", alias0, planned, n)
	}

	// `starter certificate` names the key and its planned deletion: the
	// promise is not complete yet.
	certs, err := app.CheckCertificates(r.ctx, r.pool, evidence.VerifyOptions{}, purged[0])
	if err != nil || len(certs) != 1 || len(certs[0].EpochKeys) != 1 || certs[0].PromiseComplete {
		t.Fatalf("certificates before the epoch retires: %+v %v", certs, err)
	}
	if k := certs[0].EpochKeys[0]; k.Alias != alias0 || !k.Planned || k.DeletionTakesEffect != planned || k.EpochCertificate != nil {
		t.Fatalf("epoch key before retirement %+v", k)
	}

	// Day 23: the epoch's lifetime is over; KeyEpochs retires it.
	r.clock.Set(day0.Add(keyepochs.Default.Lifetime + time.Minute))
	scheduled := r.retireDue(1)
	if len(scheduled) != 1 || scheduled[0].Epoch.Alias != alias0 || scheduled[0].Epoch.State != keyepochs.StatePendingDeletion {
		t.Fatalf("scheduled %+v, want %s pending deletion", scheduled, alias0)
	}
	if d := scheduled[0].Epoch.DeletionDate; d == nil || d.Before(time.Now().Add(7*24*time.Hour-time.Hour)) {
		t.Fatalf("deletion date %v, want 7 days ahead (KMS's clock)", d)
	}

	// The restored backup: every data key in it is wrapped by the retired key,
	// which KMS refuses to use; nothing decrypts.
	restored := testenv.EmptyDatabase(t)
	psqlRestore(t, restored, dump)
	fromBackup := openAll(r.ctx, t, r.kms, restored)
	if len(fromBackup) != len(all) {
		t.Fatalf("the restored backup holds %d orders' PII, want %d", len(fromBackup), len(all))
	}
	for id, err := range fromBackup {
		var apiErr smithy.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode() != "KMSInvalidStateException" {
			t.Errorf("%s from the backup: %v, want KMS to refuse the key pending deletion (KMSInvalidStateException)", id, err)
		}
	}

	// The live database: survivors and the held order were re-wrapped into the
	// current epoch and decrypt; the overdue order died with the key; the
	// purged ones are gone.
	live := openAll(r.ctx, t, r.kms, r.ownerDSN)
	for _, id := range append(append([]string{}, survivors...), held) {
		if err, ok := live[id]; !ok || err != nil {
			t.Errorf("survivor %s does not decrypt from the live database: %v", id, err)
		}
	}
	holders := r.dataKeyHolders()
	for _, id := range append(append([]string{}, survivors...), held) {
		if holders[id] == epoch0 || holders[id] == "" {
			t.Errorf("survivor %s is still wrapped by %q", id, holders[id])
		}
	}
	if err := live[overdue]; err == nil {
		t.Errorf("the overdue order %s still decrypts: it was meant to die with its epoch", overdue)
	}
	for _, id := range purged {
		if _, ok := live[id]; ok {
			t.Errorf("purged order %s still has PII rows", id)
		}
	}

	// The signed epoch certificate.
	recs, err := evidence.Get(r.ctx, r.pool, alias0, keyepochs.KindEpochCertificate)
	if err != nil || len(recs) != 1 || recs[0].Seq != scheduled[0].CertificateSeq {
		t.Fatalf("epoch certificate %v %v", recs, err)
	}
	var ec keyepochs.Certificate
	if err := json.Unmarshal(recs[0].Body, &ec); err != nil {
		t.Fatal(err)
	}
	if ec.KMSKeyID != epoch0 || ec.RecordsSealed != 6 || ec.RecordsRewrappedOut != 3 || ec.RecordsLeftToDie != 1 ||
		ec.Orders != 6 || len(ec.OrderIDsSHA256) != 64 || !ec.DeletionTakesEffect.Equal(*scheduled[0].Epoch.DeletionDate) {
		t.Fatalf("epoch certificate %+v", ec)
	}
	if report, err := evidence.Verify(r.ctx, r.pool, nil); err != nil || !report.OK() {
		t.Fatalf("evidence chain: %+v %v", report, err)
	}
	if bytes.Contains(recs[0].Body, []byte(marker)) {
		t.Fatal("the epoch certificate holds PII")
	}

	// Now the order's certificate comes with the epoch certificate, checked,
	// and the promise is complete.
	certs, err = app.CheckCertificates(r.ctx, r.pool, evidence.VerifyOptions{}, purged[0])
	if err != nil || len(certs) != 1 || !certs[0].PromiseComplete {
		t.Fatalf("certificates after the epoch retired: %+v %v", certs, err)
	}
	if b, err := json.MarshalIndent(certs, "", "  "); err == nil {
		t.Logf("starter certificate %s:\n%s", purged[0], b) // what an auditor sees
	}
	k := certs[0].EpochKeys[0]
	if k.Planned || k.State != keyepochs.StatePendingDeletion || k.EpochCertificate == nil ||
		k.EpochCertificate.Seq != recs[0].Seq || !k.EpochCertificate.SignatureValid || !k.EpochCertificate.LinkValid {
		t.Fatalf("epoch key after retirement %+v", k)
	}
	// A survivor's data key was wrapped by two keys: both protect its copies.
	if got, err := keyepochs.ProtectionOf(r.ctx, r.pool, survivors[0], keyepochs.PurposePII, keyepochs.Default.DeletionWindow); err != nil ||
		len(got) != 2 || got[0].How != "sealed" || got[1].How != "rewrapped" {
		t.Fatalf("survivor's epoch keys %+v %v", got, err)
	}

	// A second run changes nothing: the certificate is the same.
	again := r.retireDue(1)
	if len(again) != 0 {
		t.Fatalf("a second run retired %+v again", again)
	}
	if s, err := r.epochs.ScheduleDeletion(r.ctx, epoch0, 1); err != nil || s.CertificateSeq != recs[0].Seq {
		t.Fatalf("scheduling again: %+v %v", s, err)
	}
}

// pgDump dumps the database as its owner, as a nightly backup would.
func pgDump(t *testing.T, dsn string) []byte {
	t.Helper()
	out, err := exec.Command("pg_dump", "--no-owner", "--no-privileges", "--dbname", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump (Debian package postgresql-client): %v", err)
	}
	return out
}

func psqlRestore(t *testing.T, dsn string, dump []byte) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "dump-*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(dump); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("psql", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", dsn, "--file", f.Name()).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
}
