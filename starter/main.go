// Command starter is the operator's and the auditor's CLI: it migrates the
// database, sets up Temporal (search attributes, schedules), exports invoices,
// runs the SP-API sandbox for development, and prints and verifies evidence.
// Operator commands take the worker's environment (`worker -help`); `migrate`
// reads only the owner's database URL; the auditor commands read only
// DATABASE_URL and DPP_EVIDENCE_KEYS.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/plusranger/dpp/internal/app"
)

const usage = `Usage: starter <command> [flags]

Operator commands (the worker's environment):
  migrate                            apply the database migrations as the schema owner
                                     (DPP_MIGRATIONS_DATABASE_URL, else DATABASE_URL; nothing else is read)
  setup [-wait DURATION]             register search attributes and create (or update) the schedules;
                                     -wait keeps trying while Temporal is not up yet
  start <amazonOrderId>              start an order's lifecycle now (OrderSync does this on its own)
  invoice <amazonOrderId> -o FILE    export the order's VAT invoice PDF (recorded in the evidence log)
  credit-note issue <amazonOrderId> -refund-id ID -reason CODE -by OPERATOR (-full | -line ITEM:QTY|ITEM:AMOUNT ...)
  credit-note issue <amazonOrderId> -cancelled -by OPERATOR
                                     issue a credit note against the order's invoice: through its running
                                     lifecycle (the refund update), or from the tax record once it has ended
  credit-note list <amazonOrderId>   list the order's credit notes (numbers, amounts, retention)
  credit-note <number> -o FILE       export a credit note's PDF (recorded in the evidence log)
  credit-note upload <number>        upload a credit note to Amazon again (TaxDocumentUpload) after fixing a rejection
  invoice upload <amazonOrderId>     upload the order's VAT invoice to Amazon again (TaxDocumentUpload) after fixing a rejection
  notifications setup                subscribe DPP_ORDER_CHANGE_QUEUE_URL to SP-API's ORDER_CHANGE notifications
                                     (Notifications API destination + subscription) and start the
                                     OrderNotifications workflow that consumes it; each is looked up
                                     first and created only when missing (safe to run again)
  sandbox [-addr HOST:PORT] [-sqs URL | -goaws URL [-sqs-addr HOST:PORT]]
                                     serve the SP-API sandbox (dev default when no LWA credentials are set);
                                     -sqs: deliver its ORDER_CHANGE notifications through that SQS endpoint;
                                     -goaws: the same through goaws, serving the SDK's protocol on -sqs-addr
  doctor [-order ID] [-timeout D]    check the SP-API application (LWA credentials, the restricted roles that
                                     give buyer name and address), KMS, database roles and grants, Temporal,
                                     search attributes and schedules, and ORDER_CHANGE notifications when
                                     DPP_ORDER_CHANGE_QUEUE_URL is set; prints each finding and its fix,
                                     non-zero exit when a check fails
  access import --people FILE --accounts FILE
                                     load HR's people and accounts CSV exports (idempotent, one transaction;
                                     bad rows reported by file, line and field, nothing imported)
  access review [CAMPAIGN]           start an access review campaign now (default: this quarter, e.g. 2026-Q4)
  access enable <system> <account> --by PERSON
                                     re-enable an account locked after failed logins (the DPO's approval, as evidence)
  offboard <personId> --by PERSON [--terminated-at RFC3339]
                                     start the leaver's Offboarding (all accounts disabled within DPP_OFFBOARDING_SLA)
  incident declare --title T [--severity S] [--detected-at T] [--personal-data] [--summary S] [--id ID]
                                     declare a security incident (starts IncidentNotification)
  incident report <id> [-o NAME]     write the incident's report, NAME.md and NAME.pdf, from the
                                     database and the evidence (timeline, each deadline's outcome)
  incident approve-notification|advance-stage|ico-reported|close|confirm-false-positive <id> -by WHO ...
                                     decide on an open incident (an Update): prints its status after
                                     the decision, or why it refused (-h lists each one's flags)
  duty complete <duty> <period>      record a compliance duty as done (-by, -note, -report FILE,
                                     -rotated-at TIME): the ComplianceDuty's complete update

Auditor commands (only DATABASE_URL, read-only is enough, e.g. as dpp_auditor; verifying
commands also DPP_EVIDENCE_KEYS, the pinned public keys):
  evidence keys                      print the public signing keys, the DPP_EVIDENCE_KEYS file format
  evidence head                      print the chain's current head, SEQ:HASH, for publishing
  evidence verify [--head SEQ:HASH]  check the whole chain with the pinned keys (and that it still
                                     contains each published head); non-zero exit names the first bad entry
  evidence export --from YYYY-MM-DD --to YYYY-MM-DD -o DIR [--head SEQ:HASH]
                                     the auditor's pack for the period: report.pdf and report.json (one
                                     section per policy clause), evidence.jsonl and verification.json
  certificate <amazonOrderId>        print the order's certificates of sanitization, checked the same way
  review report <campaign> [-o PREFIX]
                                     write the campaign's access review report (PREFIX.csv, PREFIX.json) from
                                     the evidence log alone, after checking the chain with the pinned keys

  -version                           print the version and commit this binary was built from

Run 'starter <command> -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "-help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if os.Args[1] == "-version" || os.Args[1] == "version" {
		fmt.Printf("starter %s (commit %s)\n", app.Version, app.Commit)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "migrate":
		err = migrate(ctx, args)
	case "setup":
		err = setup(ctx, args)
	case "start":
		err = start(ctx, args)
	case "certificate":
		err = certificate(ctx, args)
	case "evidence":
		err = evidenceCmd(ctx, args)
	case "invoice":
		err = exportInvoice(ctx, args)
	case "credit-note":
		err = creditNoteCmd(ctx, args)
	case "sandbox":
		err = serveSandbox(ctx, args)
	case "access":
		err = accessCmd(ctx, args)
	case "offboard":
		err = offboard(ctx, args)
	case "review":
		err = reviewCmd(ctx, args)
	case "incident":
		err = incidentCmd(ctx, args)
	case "duty":
		err = dutyCmd(ctx, args)
	case "notifications":
		err = notificationsCmd(ctx, args)
	case "doctor":
		err = doctorCmd(ctx, args)
	default:
		fmt.Fprintf(os.Stderr, "starter: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "starter %s: %v\n", cmd, err)
		os.Exit(1)
	}
}
