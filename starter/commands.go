package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/devstack"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/workflows"
)

// open builds the components a command uses, and nothing else.
func open(ctx context.Context, uses app.Component) (*app.App, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	log, err := app.NewLogger("console", "warn")
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, app.Options{Logger: log, Uses: uses})
}

func setup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	wait := fs.Duration("wait", 0, "keep trying this long while Temporal (or KMS) is not ready yet, e.g. 5m where setup starts together with the cluster (docker compose, a Helm hook); 0 tries once")
	fs.Parse(args)
	// A bad setting is not something waiting fixes: report it at once.
	if _, err := config.Load(os.Getenv); err != nil {
		return err
	}
	deadline := time.Now().Add(*wait)
	for {
		report, err := setupOnce(ctx)
		for _, line := range report {
			fmt.Println(line)
		}
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "starter setup: not yet (%v); trying again until %s\n", err, deadline.Format(time.RFC3339))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// notificationsCmd is `starter notifications setup`.
func notificationsCmd(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] != "setup" {
		return errors.New("usage: starter notifications setup")
	}
	a, err := open(ctx, app.SPAPI|app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	report, err := a.SetupNotifications(ctx)
	for _, line := range report {
		fmt.Println(line)
	}
	return err
}

func setupOnce(ctx context.Context) ([]string, error) {
	a, err := open(ctx, app.Temporal)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	return a.Setup(ctx)
}

func start(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("start", flag.ExitOnError)
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: starter start <amazonOrderId>")
	}
	id := fs.Arg(0)
	if err := (workflows.OrderInput{AmazonOrderID: id}).Validate(); err != nil {
		return err
	}
	a, err := open(ctx, app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	started, err := a.StartOrder(ctx, id)
	if err != nil {
		return err
	}
	if started {
		fmt.Printf("started %s\n", workflows.OrderWorkflowID(id))
	} else {
		fmt.Printf("%s already ran or is running: nothing started\n", workflows.OrderWorkflowID(id))
	}
	return nil
}

// openAuditor connects with nothing but DATABASE_URL (and, when keys is true,
// the pinned keys in DPP_EVIDENCE_KEYS): the auditor's commands need no KMS, no
// Temporal, no seller settings and no migrations.
func openAuditor(ctx context.Context, keys bool) (*app.Auditor, error) {
	cfg, err := config.LoadAuditor(os.Getenv, keys)
	if err != nil {
		return nil, err
	}
	return app.OpenAuditor(ctx, cfg)
}

// headFlags collects repeated --head SEQ:HASH flags.
func headFlags(fs *flag.FlagSet) *[]evidence.Head {
	var heads []evidence.Head
	fs.Func("head", "the chain must still contain this head, published earlier: `SEQ:HASH` as starter evidence head prints it (repeatable)", func(s string) error {
		h, err := evidence.ParseHead(s)
		if err == nil {
			heads = append(heads, h)
		}
		return err
	})
	return &heads
}

func certificate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("certificate", flag.ExitOnError)
	heads := headFlags(fs)
	orderID := parseAroundID(fs, args)
	if orderID == "" {
		return errors.New("usage: starter certificate <amazonOrderId> [--head SEQ:HASH]")
	}
	a, err := openAuditor(ctx, true)
	if err != nil {
		return err
	}
	defer a.Close()
	certs, err := a.Certificates(ctx, orderID, *heads)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(certs)
}

const evidenceUsage = `usage: starter evidence verify [--head SEQ:HASH]...   check the chain with the pinned keys (DPP_EVIDENCE_KEYS)
       starter evidence keys                           print the public signing keys (the DPP_EVIDENCE_KEYS format)
       starter evidence head                           print the current head, SEQ:HASH, for publishing
       starter evidence export --from DATE --to DATE -o DIR   the auditor's pack for the period`

func evidenceCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(evidenceUsage)
	}
	switch args[0] {
	case "verify":
		return evidenceVerify(ctx, args[1:])
	case "keys":
		return evidenceKeys(ctx, args[1:])
	case "head":
		return evidenceHead(ctx, args[1:])
	case "export":
		return evidenceExport(ctx, args[1:])
	}
	return errors.New(evidenceUsage)
}

func evidenceVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("evidence verify", flag.ExitOnError)
	heads := headFlags(fs)
	fs.Parse(args)
	if fs.NArg() != 0 {
		return errors.New(evidenceUsage)
	}
	a, err := openAuditor(ctx, true)
	if err != nil {
		return err
	}
	defer a.Close()
	report, err := a.Verify(ctx, *heads)
	if err != nil {
		return err
	}
	if !report.OK() {
		b := report.FirstBroken
		before := ""
		switch {
		case b.Seq == 2:
			before = " (seq 1 verifies)"
		case b.Seq > 2:
			before = fmt.Sprintf(" (seq 1 to %d verify)", b.Seq-1)
		}
		return fmt.Errorf("evidence chain BROKEN: first bad entry seq %d: %s%s", b.Seq, b.Reason, before)
	}
	fmt.Printf("evidence chain intact: %s, signatures (%s) and links verified", plural(report.Records, "entry", "entries"),
		plural(len(a.Keys), "pinned key", "pinned keys"))
	if len(*heads) > 0 {
		fmt.Printf(", %s present", plural(len(*heads), "published head", "published heads"))
	}
	fmt.Printf("\nhead %s\n", report.Head)
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func evidenceKeys(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("evidence keys", flag.ExitOnError)
	fs.Parse(args)
	a, err := openAuditor(ctx, false)
	if err != nil {
		return err
	}
	defer a.Close()
	kf, err := evidence.ListKeys(ctx, a.Pool)
	if err != nil {
		return err
	}
	if len(kf.Keys) == 0 {
		return errors.New("no signing key yet: the worker creates one on its first start")
	}
	return kf.Write(os.Stdout)
}

func evidenceHead(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("evidence head", flag.ExitOnError)
	fs.Parse(args)
	a, err := openAuditor(ctx, false)
	if err != nil {
		return err
	}
	defer a.Close()
	h, err := evidence.ReadHead(ctx, a.Pool)
	if err != nil {
		return err
	}
	fmt.Println(h)
	return nil
}

// migrate applies the migrations as the schema owner. It reads nothing but
// DPP_MIGRATIONS_DATABASE_URL (else DATABASE_URL).
func migrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ExitOnError)
	fs.Parse(args)
	dsn, variable := config.MigrationsURL(os.Getenv)
	applied, err := store.MigrateURL(ctx, dsn)
	if err != nil {
		return fmt.Errorf("%s: %w", variable, err)
	}
	for _, name := range applied {
		fmt.Printf("applied %s\n", name)
	}
	versions := store.Versions()
	fmt.Printf("schema current: version %d (%d migrations, %d applied now)\n", versions[len(versions)-1], len(versions), len(applied))
	return nil
}

func exportInvoice(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "upload" {
		return uploadInvoice(ctx, args[1:])
	}
	return exportTaxDocument(ctx, args, "invoice", "usage: starter invoice <amazonOrderId> -o file.pdf -purpose CODE [-by operator]",
		func(a *app.App, orderID, by, purpose string) ([]byte, string, error) {
			pdf, inv, err := a.Orders.ExportInvoice(ctx, orderID, by, purpose)
			if err != nil {
				return nil, "", err
			}
			return pdf, fmt.Sprintf("%s invoice %s", inv.Kind, inv.Number), nil
		})
}

// exportTaxDocument writes a tax document's PDF (`starter invoice`, `starter
// credit-note <number>`) after checking the export's purpose and who asks:
// the export is recorded in the evidence log, which keeps both for years.
// export returns the PDF and what it is, for the confirmation line.
func exportTaxDocument(ctx context.Context, args []string, cmd, usage string,
	export func(a *app.App, id, by, purpose string) (pdf []byte, what string, err error)) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	out := fs.String("o", "", "write the PDF to this file (required)")
	by := fs.String("by", defaultUser(), "who is exporting: an identifier in DPP_OPERATORS, recorded in the evidence log")
	purpose := fs.String("purpose", "", "why, recorded in the evidence log: one of "+strings.Join(orders.ExportPurposes, ", "))
	id := parseAroundID(fs, args)
	if id == "" || *out == "" {
		return errors.New(usage)
	}
	if !slices.Contains(orders.ExportPurposes, *purpose) {
		return fmt.Errorf("-purpose must be one of: %s", strings.Join(orders.ExportPurposes, ", "))
	}
	a, err := open(ctx, app.Sealing)
	if err != nil {
		return err
	}
	defer a.Close()
	if !slices.Contains(a.Config.Operators, *by) {
		return errNotOperator
	}
	pdf, what, err := export(a, id, *by, *purpose)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, pdf, 0o600); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s, %d bytes); export recorded for %s\n", *out, what, len(pdf), *by)
	return nil
}

// errNotOperator: -by is kept in the evidence log for years, so it must be a
// configured operator id, never a name or an e-mail address.
var errNotOperator = errors.New("-by must name one of the operators in DPP_OPERATORS (the evidence log keeps it for years: an identifier, not a name or e-mail address)")

func defaultUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func serveSandbox(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8099", "listen address (keep it on loopback)")
	initial := fs.Int("orders", 5, "orders to generate at start")
	every := fs.Duration("every", time.Minute, "generate a new order this often (0: never)")
	delivery := fs.Duration("delivery-after", 10*time.Minute, "a generated order is delivered this long after it is placed")
	fast := fs.Bool("fast", true, "relax Amazon's rate limits (load tests and demos)")
	sqsEndpoint := fs.String("sqs", "", "SQS endpoint to deliver ORDER_CHANGE notifications through, once `starter notifications setup` subscribed; empty: the Notifications API is refused")
	goaws := fs.String("goaws", "", "goaws base URL: serve an SQS endpoint in the AWS SDK's JSON protocol for it on -sqs-addr (goaws v0.4.5 speaks only the query protocol) and deliver through it")
	sqsAddr := fs.String("sqs-addr", "127.0.0.1:4101", "listen address of the -goaws endpoint (AWS_ENDPOINT_URL_SQS for the worker)")
	fs.Parse(args)
	log, _ := app.NewLogger("console", "info")
	opts := sandbox.Options{Seed: time.Now().UnixNano(), DeliveryAfter: *delivery, LatestDeliveryAfter: *delivery * 3 / 2, Logger: log}
	if *goaws != "" {
		endpoint, stop, err := devstack.ServeSQSAdapter(*goaws, *sqsAddr)
		if err != nil {
			return fmt.Errorf("-sqs-addr: %w", err)
		}
		defer stop()
		*sqsEndpoint = endpoint
		log.Info("SQS endpoint for goaws listening", zap.String("endpoint", endpoint))
	}
	if *sqsEndpoint != "" {
		c, err := notifications.NewSQSClient(ctx, "eu-west-2", *sqsEndpoint)
		if err != nil {
			return fmt.Errorf("-sqs: %w", err)
		}
		opts.SQS = c
	}
	if *fast {
		opts.Limits = sandbox.TestLimits()
	}
	srv, err := sandbox.NewE(opts)
	if err != nil {
		return err
	}
	srv.Generate(*initial)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("-addr %s: %w", *addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	if *every > 0 {
		go func() {
			t := time.NewTicker(*every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					ids := srv.Generate(1)
					log.Info("Generated order", zap.Strings("amazonOrderIds", ids))
				}
			}
		}()
	}
	log.Info("SP-API sandbox listening", zap.String("addr", ln.Addr().String()), zap.Int("orders", *initial))
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
