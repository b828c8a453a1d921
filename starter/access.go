package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/vault"
	"github.com/plusranger/dpp/workflows"
)

const accessUsage = `usage: starter access import --people FILE --accounts FILE   load HR's CSV exports (idempotent; one transaction)
       starter access review [CAMPAIGN]                       start a campaign's review now (default: this quarter)
       starter access enable <system> <account> --by PERSON   re-enable a locked-out account (the DPO only)`

func accessCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(accessUsage)
	}
	switch args[0] {
	case "import":
		return accessImport(ctx, args[1:])
	case "review":
		return accessReview(ctx, args[1:])
	case "enable":
		return accessEnable(ctx, args[1:])
	}
	return errors.New(accessUsage)
}

func accessImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("access import", flag.ExitOnError)
	peoplePath := fs.String("people", "", "people.csv: `FILE` with columns id,name,email,slack_user_id,manager_id")
	accountsPath := fs.String("accounts", "", "accounts.csv: `FILE` with columns person_id,system,account,amazon_data,service")
	fs.Parse(args)
	if *peoplePath == "" || *accountsPath == "" || fs.NArg() != 0 {
		return errors.New("usage: starter access import --people FILE --accounts FILE")
	}
	people, err := os.Open(*peoplePath)
	if err != nil {
		return err
	}
	defer people.Close()
	accounts, err := os.Open(*accountsPath)
	if err != nil {
		return err
	}
	defer accounts.Close()
	a, err := open(ctx, app.Sealing)
	if err != nil {
		return err
	}
	defer a.Close()
	s, err := a.AccessService(ctx)
	if err != nil {
		return err
	}
	res, err := s.Registry.Import(ctx, people, accounts)
	if err != nil {
		return err
	}
	fmt.Println(res)
	return nil
}

func accessReview(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("access review", flag.ExitOnError)
	fs.Parse(args)
	campaign := workflows.CampaignOf(time.Now())
	switch fs.NArg() {
	case 0:
	case 1:
		campaign = fs.Arg(0)
	default:
		return errors.New("usage: starter access review [CAMPAIGN]")
	}
	a, err := open(ctx, app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	started, err := a.StartAccessReview(ctx, campaign)
	if err != nil {
		return err
	}
	report(started, workflows.AccessReviewWorkflowID(campaign))
	return nil
}

func report(started bool, id string) {
	if started {
		fmt.Printf("started %s\n", id)
	} else {
		fmt.Printf("%s already ran or is running: nothing started\n", id)
	}
}

func offboard(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("offboard", flag.ExitOnError)
	at := fs.String("terminated-at", "", "when the person left, RFC 3339 (default: now)")
	by := fs.String("by", "", "person id of who asks (required)")
	personID := parseAroundID(fs, args)
	if personID == "" || *by == "" {
		return errors.New("usage: starter offboard <personId> --by PERSON [--terminated-at RFC3339]")
	}
	in := workflows.OffboardingInput{PersonID: personID, RequestedBy: *by, TerminatedAt: time.Now().UTC().Truncate(time.Second)}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return errors.New("--terminated-at must be RFC 3339, e.g. 2026-12-01T17:30:00Z")
		}
		in.TerminatedAt = t.UTC()
	}
	a, err := open(ctx, app.Database|app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	started, err := a.StartOffboarding(ctx, in)
	if err != nil {
		return err
	}
	report(started, workflows.OffboardingWorkflowID(personID))
	return nil
}

func reviewCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "report" {
		return errors.New("usage: starter review report <campaign> [-o PREFIX]")
	}
	fs := flag.NewFlagSet("review report", flag.ExitOnError)
	prefix := fs.String("o", "", "write `PREFIX`.csv and PREFIX.json (default access-review-<campaign>)")
	openReasons := fs.Bool("open-reasons", false, "show the written reasons' text: needs the operator's KMS settings (DPP_KMS_KEY_ID ...); without it the report says only whether each reason is still sealed or when it was erased")
	args = args[1:]
	campaign := parseAroundID(fs, args)
	if campaign == "" {
		return errors.New("usage: starter review report <campaign> [-o PREFIX]")
	}
	if *prefix == "" {
		*prefix = workflows.AccessReviewWorkflowID(campaign)
	}
	a, err := openAuditor(ctx, true)
	if err != nil {
		return err
	}
	defer a.Close()
	// The report is only as good as the chain it comes from: check it first.
	chain, err := a.Verify(ctx, nil)
	if err != nil {
		return err
	}
	if !chain.OK() {
		return fmt.Errorf("evidence chain BROKEN at seq %d (%s): no report", chain.FirstBroken.Seq, chain.FirstBroken.Reason)
	}
	var v *vault.Vault
	if *openReasons {
		op, err := open(ctx, app.Sealing)
		if err != nil {
			return err
		}
		defer op.Close()
		v = op.Vault
	}
	rep, err := access.CampaignReport(ctx, a.Pool, campaign, v)
	if err != nil {
		return err
	}
	if len(rep.Items) == 0 {
		return fmt.Errorf("the evidence log has no decision of campaign %s", campaign)
	}
	csvFile, err := os.Create(*prefix + ".csv")
	if err != nil {
		return err
	}
	if err := errors.Join(rep.WriteCSV(csvFile), csvFile.Close()); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*prefix+".json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("campaign %s: %d items, %d kept, %d revoked (%d verified, %d not verified), %d escalations/extensions; chain intact (%d entries)\n",
		campaign, len(rep.Items), rep.Kept, rep.Revoked, rep.Verified, rep.Unverified, len(rep.Events), chain.Records)
	fmt.Printf("wrote %s.csv and %s.json\n", *prefix, *prefix)
	return nil
}

func accessEnable(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("access enable", flag.ExitOnError)
	by := fs.String("by", "", "person id of the DPO approving it (DPP_DPO_PERSON_ID)")
	var pos []string
	for len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		pos, args = append(pos, args[0]), args[1:]
	}
	fs.Parse(args)
	pos = append(pos, fs.Args()...)
	if len(pos) != 2 || *by == "" {
		return errors.New("usage: starter access enable <system> <account> --by PERSON")
	}
	a, err := open(ctx, app.Sealing)
	if err != nil {
		return err
	}
	defer a.Close()
	s, err := a.AccessService(ctx)
	if err != nil {
		return err
	}
	if err := s.Reenable(ctx, pos[0], pos[1], *by); err != nil {
		return err
	}
	fmt.Printf("%s/%s re-enabled on the approval of %s (recorded in the evidence log)\n", pos[0], pos[1], *by)
	return nil
}
